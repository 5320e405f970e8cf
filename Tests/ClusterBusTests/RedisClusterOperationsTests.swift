import Foundation
import Glibc
import Protocol
import Runtime
import TestSupport
import Testing

@testable import ClusterBus

/// The cluster bus's operational side: the refresh rate limit and the log throttle as values, node names
/// resolved off the loop, and on a real three-master cluster (`cluster-require-full-coverage no`) a seed
/// given by name, an uncovered slot (degraded: that room refused, the others served), `cluster_state:fail`
/// (down), recovery, and a slot migrated under a subscribed room (ASK, MOVED storm, resubscribe), each
/// counted in `RedisClusterMetrics`, reported in the readiness detail and logged.
@Suite(.serialized) struct RedisClusterOperationsTests {
    typealias Recorder = RedisClusterBusTests.Recorder

    @Test func refreshLimiterStartsAtMostOnePerIntervalAndMergesTheRest() {
        var l = RedisRefreshLimiter(intervalMilliseconds: 100)
        func ask(_ now: UInt64) -> RedisRefreshLimiter.Decision { l.request(now: now) }
        #expect(ask(1000) == .startNow, "the first request starts at once")
        l.started(now: 1000)
        #expect(ask(1010) == .startAt(1100), "within the interval: one timer at its end")
        #expect(l.isScheduled)
        for t in stride(from: UInt64(1011), to: 1100, by: 7) { #expect(ask(t) == .merged, "a storm joins the scheduled refresh") }
        l.started(now: 1100)
        #expect(!l.isScheduled)
        #expect(ask(1150) == .startAt(1200))
        l.started(now: 1200)
        #expect(ask(1300) == .startNow, "a quiet interval later: at once again")
        l.started(now: 1300)
        // A storm of 1000 requests over one second costs ten refreshes.
        var starts = 0
        var pending: UInt64?
        for t in UInt64(1301)...2300 {
            if let p = pending, t >= p { l.started(now: t); starts += 1; pending = nil }
            switch l.request(now: t) {
            case .startNow: l.started(now: t); starts += 1
            case .startAt(let at): pending = at
            case .merged: break
            }
        }
        #expect(starts == 10, "\(starts)")
    }

    @Test func logThrottleSaysEachChangeAtOnceAndRepeatsSlowly() {
        var t = RedisLogThrottle(repeatMilliseconds: 30_000)
        func say(_ key: String, _ text: String, _ now: UInt64) -> Bool { t.shouldLog(key, text, now: now) }
        #expect(say("conn a", "refused", 0))
        #expect(!say("conn a", "refused", 2000), "the same line again: quiet")
        #expect(say("conn b", "refused", 2000), "another node: logged")
        #expect(say("conn a", "reset", 4000), "a new reason: logged at once")
        #expect(!say("conn a", "reset", 33_999))
        #expect(say("conn a", "reset", 34_000), "repeated after 30 s")
        t.clear("conn a")
        #expect(say("conn a", "reset", 34_001), "solved, then back: logged at once")
    }

    @Test func theMapReadsAnnouncedHostnamesAndPrefersTLSPortsForTLS() throws {
        func s(_ t: String) -> RedisReply { .string(Array(t.utf8)) }
        let node = RedisReply.array([
            s("id"), s("a"), s("port"), .integer(7000), s("tls-port"), .integer(7100), s("ip"), s("10.0.0.1"), s("endpoint"), s("10.0.0.1"),
            s("hostname"), s("redis-a.internal"), s("role"), s("master"), s("health"), s("online")
        ])
        let tlsOnly = RedisReply.array([
            s("id"), s("b"), s("tls-port"), .integer(7101), s("ip"), s("10.0.0.2"), s("endpoint"), s("10.0.0.2"), s("hostname"), s(""),
            s("role"), s("master"), s("health"), s("online")
        ])
        let reply = RedisReply.array([
            .array([s("slots"), .array([.integer(0), .integer(8191)]), s("nodes"), .array([node])]),
            .array([s("slots"), .array([.integer(8192), .integer(16383)]), s("nodes"), .array([tlsOnly])])
        ])
        let plain = try RedisClusterMap(shardsReply: reply)
        #expect(plain.primary(ofSlot: 0)?.port == 7000 && plain.primary(ofSlot: 0)?.hostname == "redis-a.internal")
        #expect(plain.primary(ofSlot: 9000)?.port == 7101 && plain.primary(ofSlot: 9000)?.hostname == nil, "an empty hostname is none")
        let tls = try RedisClusterMap(shardsReply: reply, preferTLSPort: true)
        #expect(tls.primary(ofSlot: 0)?.port == 7100 && tls.primary(ofSlot: 9000)?.port == 7101)
        // The name a TLS link checks: the announced hostname, else the address it was reached by.
        #expect(RedisClusterRouter.tlsName(host: "10.0.0.1", port: 7100, map: tls) == "redis-a.internal")
        #expect(RedisClusterRouter.tlsName(host: "10.0.0.2", port: 7101, map: tls) == "10.0.0.2")
        #expect(RedisClusterRouter.tlsName(host: "seed.internal", port: 7000, map: tls) == "seed.internal")
        #expect(RedisClusterRouter.tlsName(host: "seed.internal", port: 7000, map: nil) == "seed.internal")
    }

    @Test func healthJSONSaysWhatIsServed() {
        var h = RedisClusterHealth()
        #expect(h.slotMapState == "down" && h.uncoveredCount == 16384)
        #expect(h.json.hasPrefix(#"{"slot_map":"down","cluster_state":"ok","primaries":0,"uncovered_slots":16384,"uncovered_ranges":"0-16383""#))
        h.mapLoaded = true
        h.primaries = 2
        h.uncovered = [0...5460, 7000...7000]
        h.lastError = "127.0.0.1:7000: Connection refused"
        #expect(h.slotMapState == "degraded")
        #expect(
            h.json
                == #"{"slot_map":"degraded","cluster_state":"ok","primaries":2,"uncovered_slots":5462,"uncovered_ranges":"0-5460,7000","last_error":"127.0.0.1:7000: Connection refused"}"#
        )
        h.clusterStateOK = false
        #expect(h.slotMapState == "down", "cluster_state:fail: Redis refuses every slot")
        h.clusterStateOK = true
        h.uncovered = []
        #expect(h.slotMapState == "ok")
        h.uncovered = (0..<20).map { ($0 * 10)...($0 * 10 + 1) }
        #expect(h.rangesText(limit: 2) == "0-1,10-11,…")
    }

    @Test func namesAreLookedUpOffTheLoopOnceForConcurrentRequests() throws {
        let loop = try EventLoop(index: 86)
        loop.start(name: "resolver-test")
        defer { loop.stopAndWait(timeoutMilliseconds: 2000) }
        let lookups = Lock<[String]>([])
        let onLoopThread = Lock<Bool?>(nil)
        nonisolated(unsafe) let resolver = RedisHostResolver(loop: loop)
        resolver.lookup = { name in
            onLoopThread.withLock { $0 = loop.inLoop }
            lookups.withLock { $0.append(name) }
            usleep(50_000)
            return name == "redis.test" ? "10.1.2.3" : nil
        }
        let done = Lock(0)
        loop.execute {
            #expect(!resolver.needsLookup("127.0.0.1") && resolver.address(of: "::1") == "::1", "numeric: no lookup")
            for _ in 0..<3 { resolver.resolve("redis.test") { done.withLock { $0 += 1 } } }
            resolver.resolve("nowhere.test") { done.withLock { $0 += 1 } }
        }
        #expect(wait(3) { done.withLock { $0 } == 4 })
        #expect(lookups.withLock { $0.sorted() } == ["nowhere.test", "redis.test"], "one lookup per name")
        #expect(onLoopThread.withLock { $0 } == false, "getaddrinfo never runs on the loop")
        let answers: (String?, String?, Bool)? = sync { reply in
            loop.execute { reply((resolver.address(of: "redis.test"), resolver.failure(of: "nowhere.test"), resolver.needsLookup("redis.test"))) }
        }
        #expect(answers?.0 == "10.1.2.3" && answers?.1 == "cannot resolve nowhere.test" && answers?.2 == false)
    }

    @Test func uncoveredSlotsClusterFailAndAMigrationAreCountedReportedAndLogged() throws {
        let cluster = try RedisTestCluster(masters: 3, extraArguments: ["--cluster-require-full-coverage", "no"])
        let loop = try EventLoop(index: 87)
        loop.start(name: "cluster-ops")
        let keeper = LoopKeeper(loop)
        defer { keeper.stop() }
        let logs = Lock<[String]>([])
        // The seed by name: resolved off the loop.
        let bus = RedisClusterBus(
            loop: loop, seeds: [("localhost", cluster.ports[0])], prefix: "ops:", nodeID: "o",
            logger: { _, message, fields in logs.withLock { $0.append(message + " " + fields.map { "\($0.0)=\($0.1)" }.joined(separator: " ")) } })
        let recorder = Recorder()
        bus.start(delegate: recorder)
        keeper.keep(bus)
        defer { bus.shutdown {} }
        let m = bus.clusterMetrics
        #expect(wait(5) { bus.state == .up }, "\(m.health.json)")
        #expect(m.primaries.load() == 3 && m.uncoveredSlots.load() == 0 && m.refreshesComplete.load() >= 1)
        #expect(m.nodeCounts.contains { $0.node == "localhost:\(cluster.ports[0])" && $0.counts.connects >= 1 }, "\(m.nodeCounts)")
        #expect(bus.clusterReadinessDetail.json.hasPrefix(#"{"slot_map":"ok","cluster_state":"ok","primaries":3,"uncovered_slots":0"#))

        // One slot unassigned on every node: only its rooms are refused.
        let keys = RedisClusterKeys(prefix: "ops:", nodeID: "x")
        let lost = "lost-room"
        let slot = keys.slot(ofRoom: lost)
        let kept = try #require((0..<50).map { "kept\($0)" }.first { keys.slot(ofRoom: $0) != slot })
        let map = try RedisClusterMap(shardsReply: try #require(SyncRedisClient.command(port: cluster.ports[0], ["CLUSTER", "SHARDS"])))
        let owner = try #require(map.primary(ofSlot: slot)).port
        for p in cluster.ports { _ = cluster.cli(p, ["CLUSTER", "DELSLOTS", "\(slot)"]) }
        #expect(wait(5) { m.health.slotMapState == "degraded" }, "\(m.health.json)")
        #expect(bus.state == .up, "degraded is ready: the other rooms work")
        #expect(m.health.uncoveredCount == 1 && m.health.rangesText() == "\(slot)" && m.uncoveredSlots.load() == 1)
        #expect(m.refreshesUncovered.load() >= 1)
        let refused = sync { done in bus.publish(room: lost, data: JSONFragment("1"), idempotencyKey: nil) { done($0) } }
        guard case .failure(.unavailable(let why))? = refused else { Issue.record("\(String(describing: refused))"); return }
        #expect(why.contains("slot \(slot) has no live primary"), "\(why)")
        let served = sync { done in bus.publish(room: kept, data: JSONFragment("1"), idempotencyKey: nil) { done($0) } }
        guard case .success? = served else { Issue.record("a room on a served slot: \(String(describing: served))"); return }
        #expect(logs.withLock { $0.contains { $0.contains("slots without a live primary") && $0.contains("ranges=string(\"\(slot)\")") } })

        // With full coverage required, Redis itself refuses every slot (cluster_state:fail): down. (The state is
        // recomputed on a slot change, so a second slot goes too.)
        let slot2 = (slot + 1) % 16384
        let owner2 = try #require(map.primary(ofSlot: slot2)).port
        for p in cluster.ports { _ = cluster.cli(p, ["CONFIG", "SET", "cluster-require-full-coverage", "yes"]) }
        for p in cluster.ports { _ = cluster.cli(p, ["CLUSTER", "DELSLOTS", "\(slot2)"]) }
        #expect(wait(6) { bus.state == .down }, "\(m.health.json)")
        #expect(m.health.json.contains(#""slot_map":"down","cluster_state":"fail""#), "\(m.health.json)")
        #expect(logs.withLock { $0.contains { $0.contains("cluster_state:fail") } })
        // The slot back on its owner: up and complete again.
        _ = cluster.cli(owner, ["CLUSTER", "ADDSLOTS", "\(slot)"])
        _ = cluster.cli(owner2, ["CLUSTER", "ADDSLOTS", "\(slot2)"])
        #expect(wait(8) { bus.state == .up && m.health.slotMapState == "ok" }, "\(m.health.json)")
        #expect(logs.withLock { $0.contains { $0.hasPrefix("redis cluster serves every slot") } })

        // A subscribed room's slot migrated: ASK for a fresh room of that slot while migrating, then the
        // room's keys moved and the slot handed over: MOVED for a burst of publishes, the subscription follows.
        let room = "moving"
        let rslot = keys.slot(ofRoom: room)
        let fresh = try #require((0..<200_000).lazy.map { "ask-\($0)" }.first { keys.slot(ofRoom: $0) == rslot })
        let source = try #require(map.primary(ofSlot: rslot)).port
        let target = try #require(cluster.ports.first { $0 != source })
        bus.subscribe(room: room)
        guard case .success? = sync({ done in bus.join(room: room, since: nil) { done($0) } }) else { Issue.record("join"); return }
        guard case .success? = sync({ done in bus.publish(room: room, data: JSONFragment("0"), idempotencyKey: nil) { done($0) } }) else {
            Issue.record("publish 0")
            return
        }
        #expect(wait(3) { recorder.data(room) == ["0"] })
        let sourceID = cluster.cli(source, ["CLUSTER", "MYID"]).trimmingCharacters(in: .whitespacesAndNewlines)
        let targetID = cluster.cli(target, ["CLUSTER", "MYID"]).trimmingCharacters(in: .whitespacesAndNewlines)
        _ = cluster.cli(target, ["CLUSTER", "SETSLOT", "\(rslot)", "IMPORTING", sourceID])
        _ = cluster.cli(source, ["CLUSTER", "SETSLOT", "\(rslot)", "MIGRATING", targetID])
        // (A multi-key publish of a room with no keys yet is refused with TRYAGAIN by the importing node, so
        // ASK is shown with one key.)
        let asked: RedisReply?? = sync { done in loop.execute { bus.router.send(RedisCommand(["SET", keys.meta(fresh), "a"]), slot: rslot) { done($0) } } }
        #expect(asked == .some(.status("OK")), "ASK: \(String(describing: asked))")
        #expect(m.askRedirects.load() >= 1)
        // The room's keys moved one at a time: a publish meanwhile meets TRYAGAIN (history across, meta still
        // on the source) and is sent again until both are across (then ASK to the importing node).
        _ = cluster.cli(source, ["MIGRATE", "127.0.0.1", "\(target)", "", "0", "5000", "KEYS", keys.history(room)])
        let split = Lock<Result<StreamOffset, BusError>?>(nil)
        bus.publish(room: room, data: JSONFragment("\"t\""), idempotencyKey: nil) { r in split.withLock { $0 = r } }
        usleep(60_000)
        _ = cluster.cli(source, ["MIGRATE", "127.0.0.1", "\(target)", "", "0", "5000", "KEYS", keys.meta(room)])
        #expect(wait(3) { split.withLock { $0 } != nil })
        if case .success? = split.withLock({ $0 }) {} else { Issue.record("publish across TRYAGAIN: \(String(describing: split.withLock { $0 }))") }
        #expect(m.tryAgains.load() >= 1)
        let refreshesBefore = m.refreshesComplete.load() + m.refreshesUncovered.load() + m.refreshesFailed.load()
        for p in cluster.ports { _ = cluster.cli(p, ["CLUSTER", "SETSLOT", "\(rslot)", "NODE", targetID]) }
        let refreshedMeanwhile = m.refreshesComplete.load() + m.refreshesUncovered.load() + m.refreshesFailed.load() > refreshesBefore
        let started = Date()
        let acked = Lock(0)
        for i in 1...20 {
            bus.publish(room: room, data: JSONFragment("\(i)"), idempotencyKey: nil) { r in if case .success = r { acked.withLock { $0 += 1 } } }
        }
        #expect(wait(5) { acked.withLock { $0 } == 20 })
        let elapsedMs = Int(Date().timeIntervalSince(started) * 1000)
        let refreshes = m.refreshesComplete.load() + m.refreshesUncovered.load() + m.refreshesFailed.load() - refreshesBefore
        #expect(m.movedRedirects.load() >= 1 || refreshedMeanwhile, "MOVED followed")
        #expect(refreshes <= elapsedMs / 100 + 2, "rate-limited: \(refreshes) refreshes in \(elapsedMs) ms")
        #expect(wait(5) { m.resubscribes.load() >= 1 }, "subscribed again on the new owner")
        // The burst's publishes may be stored in any order (some redirected, some sent after the map learned
        // the move); each is delivered once.
        let expected = Set((0...20).map(String.init) + ["\"t\""])
        #expect(wait(5) { Set(recorder.data(room)) == expected }, "nothing lost: \(recorder.data(room))")
        #expect(recorder.data(room).count == 22, "nothing twice: \(recorder.data(room))")

        var w = PrometheusWriter()
        bus.writeClusterMetrics(to: &w)
        for line in [
            "switchboard_redis_cluster_redirects_total{kind=\"ask\"} ", "switchboard_redis_cluster_refreshes_total{result=\"uncovered\"} ",
            "switchboard_redis_cluster_uncovered_slots 0", "switchboard_redis_cluster_primaries 3",
            "switchboard_redis_cluster_node_connects_total{node=\"localhost:\(cluster.ports[0])\"} ",
            "# TYPE switchboard_redis_cluster_resubscribes_total counter"
        ] {
            #expect(w.text.contains(line), "\(line)")
        }
    }

    @Test func aFailoverWhilePublishingAndAShardKilledAreCountedAndLoseNothing() throws {
        let cluster = try RedisTestCluster(masters: 3, replicasPerMaster: 1)
        let loop = try EventLoop(index: 84)
        loop.start(name: "cluster-ops-failover")
        let keeper = LoopKeeper(loop)
        defer { keeper.stop() }
        let logs = Lock<[String]>([])
        let bus = RedisClusterBus(
            loop: loop, seeds: cluster.ports.map { ("127.0.0.1", $0) }, prefix: "fo:", nodeID: "f",
            logger: { _, message, fields in logs.withLock { $0.append(message + " " + fields.map { "\($0.1)" }.joined(separator: " ")) } })
        let recorder = Recorder()
        bus.start(delegate: recorder)
        keeper.keep(bus)
        defer { bus.shutdown {} }
        let m = bus.clusterMetrics
        #expect(wait(5) { bus.state == .up })
        let keys = RedisClusterKeys(prefix: "fo:", nodeID: "x")
        let map = try RedisClusterMap(shardsReply: try #require(SyncRedisClient.command(port: cluster.ports[0], ["CLUSTER", "SHARDS"])))
        let killedRoom = "killed"
        let killedPrimary = try #require(map.primary(ofSlot: keys.slot(ofRoom: killedRoom))).port
        let movedRoom = try #require((0..<50).map { "handed\($0)" }.first { map.primary(ofSlot: keys.slot(ofRoom: $0))?.port != killedPrimary })
        let replica = try #require(map.shard(ofSlot: keys.slot(ofRoom: movedRoom))?.replicas.first).port
        for room in [killedRoom, movedRoom] {
            bus.subscribe(room: room)
            guard case .success? = sync({ done in bus.join(room: room, since: nil) { done($0) } }) else { Issue.record("join \(room)"); return }
        }
        /// Publishes `n` into `room`, retried with its idempotency key until acknowledged (10 s at most).
        func publish(_ room: String, _ n: Int) -> Bool {
            let deadline = Date().addingTimeInterval(10)
            while Date() < deadline {
                if case .success? = sync({ done in bus.publish(room: room, data: JSONFragment("\(n)"), idempotencyKey: "\(room)-\(n)") { done($0) } }) {
                    return true
                }
                usleep(50_000)
            }
            return false
        }

        // CLUSTER FAILOVER (graceful, the replica takes over) while publishing.
        for n in 0..<20 {
            if n == 5 { _ = cluster.cli(replica, ["CLUSTER", "FAILOVER"]) }
            #expect(publish(movedRoom, n), "publish \(n) after the failover")
        }
        #expect(wait(5) { recorder.data(movedRoom) == (0..<20).map(String.init) }, "once each, in order: \(recorder.data(movedRoom))")
        #expect(wait(5) { m.resubscribes.load() >= 1 }, "subscribed again on the promoted replica")

        // The other shard's primary killed: its replica is promoted after the node timeout.
        cluster.kill(port: killedPrimary)
        for n in 0..<5 { #expect(publish(killedRoom, n)) }
        #expect(wait(5) { recorder.data(killedRoom) == (0..<5).map(String.init) }, "\(recorder.data(killedRoom))")
        let failures = m.nodeCounts.first { $0.node == "127.0.0.1:\(killedPrimary)" }?.counts.failures ?? 0
        #expect(failures >= 1, "\(m.nodeCounts)")
        #expect(
            logs.withLock { $0.contains { $0.hasPrefix("redis cluster node connection failed") && $0.contains("127.0.0.1:\(killedPrimary)") } },
            "\(logs.withLock { $0 })")
        #expect(wait(5) { bus.state == .up && m.health.slotMapState == "ok" }, "\(m.health.json)")
    }
}
