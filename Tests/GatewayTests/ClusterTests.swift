import ClusterBus
import Foundation
import Glibc
import Protocol
import Runtime
import Testing

/// The Redis cluster bus end to end (issue 3, "Done when"): a real `redis-server` (Debian's, free port, no
/// persistence) and three real `switchboard` processes per test, each test with its own Redis and key
/// prefix; everything on 127.0.0.1 and bounded in time.
@Suite(.serialized) struct ClusterTests {
    /// Redis plus nodes "a", "b", "c" (by default) sharing `prefix`, each waited for until `/ready` is 200.
    func cluster(_ ids: [String] = ["a", "b", "c"], prefix: String, _ extra: [String] = [], threads: Int = 2) throws -> (RedisServer, [GatewayProcess]) {
        let redis = try RedisServer()
        var nodes: [GatewayProcess] = []
        for id in ids {
            nodes.append(try GatewayProcess(["--redis-url", redis.url, "--node-id", id, "--prefix", prefix] + extra, threads: threads))
        }
        for n in nodes { try waitReady(n) }
        return (redis, nodes)
    }

    func waitReady(_ gw: GatewayProcess, timeout: TimeInterval = 10) throws {
        try waitUntil(timeout, "node \(gw.port) ready") { (try? httpGet(port: gw.adminPort, path: "/ready"))?.0 == 200 }
    }

    func waitUntil(_ timeout: TimeInterval, _ what: String, _ condition: () throws -> Bool) throws {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if try condition() { return }
            usleep(50_000)
        }
        throw TestFailure("timed out after \(timeout)s waiting for \(what)")
    }

    func publish(_ c: WSClient, _ room: String, _ data: String, id: Int? = nil) throws {
        try c.sendOp("{\"op\":\"publish\",\"room\":\"\(room)\",\"data\":\(data)\(id.map { ",\"id\":\($0)" } ?? "")}")
    }

    func messages(_ c: WSClient, quiet: TimeInterval = 1.0) throws -> [ServerMessage] {
        try c.drainJSON(quiet: quiet).filter { $0.op == "message" }
    }

    func dataText(_ m: ServerMessage) -> String { m.data.map { String(decoding: $0.bytes, as: UTF8.self) } ?? "" }

    // MARK: - Done when

    @Test func messagePublishedOnOneNodeReachesMembersOnTheOthersExactlyOnce() throws {
        let (redis, nodes) = try cluster(prefix: "t-once:")
        defer { withExtendedLifetime((redis, nodes)) {} }
        let members = try nodes.map { try WSClient(port: $0.port) }
        for m in members {
            let j = try m.join("lobby")
            #expect(j.op == "joined" && j.offset != nil && j.recovered == false)
        }
        let publisher = try WSClient(port: nodes[0].port)  // on A, not a member
        for i in 0..<20 { try publish(publisher, "lobby", "{\"n\":\(i)}", id: i) }
        let acks = try publisher.drainJSON(quiet: 1.0).filter { $0.op == "ack" }
        #expect(acks.count == 20)
        var perMember: [[String]] = []
        for m in members {
            let got = try messages(m)
            #expect(got.count == 20, "a member got \(got.count) of 20")
            #expect(got.map(dataText) == (0..<20).map { "{\"n\":\($0)}" })
            perMember.append(got.compactMap(\.offset))
        }
        #expect(Set(perMember[0]).count == 20)
        #expect(perMember.allSatisfy { $0 == perMember[0] }, "every member saw the same offsets")
        #expect(acks.compactMap(\.offset) == perMember[0], "acks carry the offsets members got")
        // /ready tells the truth about Redis, and the bus families are exported.
        let (status, body) = try httpGet(port: nodes[1].adminPort, path: "/ready")
        #expect(status == 200 && body.contains("\"redis\":{\"commands\":\"up\",\"subscriber\":\"up\",\"canary\":{\"healthy\":true"))
        #expect(try nodes[1].metric("switchboard_bus_state") == 1)
        #expect(try nodes[1].metric("switchboard_bus_messages_received_total") == 20)
        #expect(try nodes[0].metric("switchboard_redis_publish_latency_seconds_count") == 20)
    }

    @Test func severalPublishersOnDifferentNodesOneOrderForEveryMember() throws {
        let (redis, nodes) = try cluster(prefix: "t-order:")
        defer { withExtendedLifetime((redis, nodes)) {} }
        var members: [WSClient] = []
        for n in nodes {
            for _ in 0..<2 {
                let m = try WSClient(port: n.port)
                _ = try m.join("race")
                members.append(m)
            }
        }
        let publishers = try nodes.map { try WSClient(port: $0.port) }
        let perPublisher = 100
        let boxed = TestBox(publishers)
        DispatchQueue.concurrentPerform(iterations: publishers.count) { p in
            for i in 0..<perPublisher {
                try? boxed.value[p].sendOp("{\"op\":\"publish\",\"room\":\"race\",\"data\":{\"p\":\(p),\"n\":\(i)}}")
            }
        }
        var sequences: [[String]] = []
        for m in members {
            let got = try messages(m, quiet: 1.5)
            #expect(got.count == perPublisher * publishers.count)
            sequences.append(got.map { "\($0.offset ?? "") \(dataText($0))" })
            // Offsets strictly increase (one total order per room).
            let offsets = got.compactMap { $0.offset.flatMap(StreamOffset.init) }
            #expect(zip(offsets, offsets.dropFirst()).allSatisfy { $1.isAfter($0) })
            // Each publisher's own messages stay in the order it sent them.
            for p in 0..<publishers.count {
                let mine = got.map(dataText).filter { $0.hasSuffix("\"p\":\(p)}") }
                #expect(mine == (0..<perPublisher).map { "{\"n\":\($0),\"p\":\(p)}" })
            }
        }
        #expect(sequences.allSatisfy { $0 == sequences[0] }, "all members saw one order")
    }

    @Test func nodeWithoutMembersReceivesNoneOfTheRoomsTraffic() throws {
        let prefix = "t-quiet:"
        let (redis, nodes) = try cluster(prefix: prefix)
        defer { withExtendedLifetime((redis, nodes)) {} }
        let channel = prefix + "room:quiet"
        let ma = try WSClient(port: nodes[0].port)
        let mb = try WSClient(port: nodes[1].port)
        _ = try ma.join("quiet")
        _ = try mb.join("quiet")
        let numsub = { () throws -> Int in try redis.command(["PUBSUB", "NUMSUB", channel]).array?[1].int ?? -1 }
        try waitUntil(3, "2 subscribers") { try numsub() == 2 }
        // C subscribes only to the control channels ({prefix}ctl, its own, and {prefix}api for the server API).
        #expect(try redis.clientFields(named: "switchboard-sub-c")?["sub"] == "3")
        let outsider = try WSClient(port: nodes[2].port)  // publishes on C without being a member
        for i in 0..<10 { try publish(outsider, "quiet", "\(i)", id: i) }
        #expect(try outsider.drainJSON(quiet: 0.8).filter { $0.op == "ack" }.count == 10)
        #expect(try messages(ma).count == 10)
        #expect(try messages(mb).count == 10)
        #expect(try nodes[2].metric("switchboard_bus_messages_received_total") == 0)
        #expect(try nodes[0].metric("switchboard_bus_messages_received_total") == 10)
        #expect(try numsub() == 2)
        // A member on C subscribes C; its leave unsubscribes it again.
        let mc = try WSClient(port: nodes[2].port)
        _ = try mc.join("quiet")
        #expect(try numsub() == 3)
        try mc.sendOp("{\"op\":\"leave\",\"room\":\"quiet\"}")
        #expect(try mc.nextJSON().op == "left")
        try waitUntil(3, "C unsubscribed") { try numsub() == 2 }
    }

    @Test func redisKilledAndRestartedNodesReconnectResubscribeAndTrafficResumes() throws {
        let (redis, nodes) = try cluster(prefix: "t-restart:", ["--redis-backoff-base", "50ms", "--redis-backoff-cap", "500ms"])
        defer { withExtendedLifetime((redis, nodes)) {} }
        let mb = try WSClient(port: nodes[1].port)
        let mc = try WSClient(port: nodes[2].port)
        _ = try mb.join("live")
        _ = try mc.join("live")
        let publisher = try WSClient(port: nodes[0].port)
        for i in 0..<5 { try publish(publisher, "live", "\(i)", id: i) }
        #expect(try messages(mb).count == 5)
        #expect(try messages(mc).count == 5)
        _ = try publisher.drainJSON(quiet: 0.2)

        redis.kill()
        for n in nodes {
            try waitUntil(5, "node \(n.port) not ready") { (try? httpGet(port: n.adminPort, path: "/ready"))?.0 == 503 }
        }
        // Publishing during the outage: an `unavailable` error for each, never a silent drop.
        for i in 100..<103 { try publish(publisher, "live", "\(i)", id: i) }
        let errors = try publisher.drainJSON(quiet: 0.8)
        #expect(errors.count == 3 && errors.allSatisfy { $0.op == "error" && $0.code == "unavailable" }, "\(errors.map(\.op))")
        #expect(Set(errors.compactMap { $0.id?.description }) == ["100", "101", "102"])

        try redis.start()
        for n in nodes { try waitReady(n, timeout: 15) }
        for i in 5..<10 { try publish(publisher, "live", "\(i)", id: i) }
        #expect(try publisher.drainJSON(quiet: 1.0).filter { $0.op == "ack" }.count == 5)
        // Clients stayed connected and get the new traffic exactly once, in order.
        #expect(try messages(mb).map(dataText) == (5..<10).map(String.init))
        #expect(try messages(mc).map(dataText) == (5..<10).map(String.init))
        for n in nodes {
            #expect(n.process.isRunning)
            #expect((try n.metric("switchboard_redis_reconnects_total{conn=\"subscriber\"}") ?? 0) >= 1)
        }
    }

    @Test func killedSubscriberConnectionIsBackFilledInOrderWhilePublishesContinue() throws {
        let (redis, nodes) = try cluster(prefix: "t-backfill:")
        defer { withExtendedLifetime((redis, nodes)) {} }
        let b = nodes[1]
        let members = try (0..<2).map { _ in try WSClient(port: b.port) }
        for m in members { _ = try m.join("feed") }
        let publisher = try WSClient(port: nodes[0].port)
        let total = 400
        let done = DispatchSemaphore(value: 0)
        let boxed = TestBox(publisher)
        DispatchQueue.global().async {
            for i in 0..<total {
                try? boxed.value.sendOp("{\"op\":\"publish\",\"room\":\"feed\",\"data\":\(i)}")
                usleep(1000)
            }
            done.signal()
        }
        usleep(100_000)
        let id = try #require(try redis.clientID(named: "switchboard-sub-b"))
        // In one write: kill B's subscriber connection, then publish 20 more through the documented script.
        // Redis runs them in order, so those 20 land while B is certainly not subscribed: only the back-fill
        // can bring them (the WebSocket publishes keep flowing around the outage as well).
        let sha = try #require(try redis.command(["SCRIPT", "LOAD", RedisScripts.publish.source]).text)
        let raw = try RawSocket(port: redis.port)
        var batch = RESP.encode(["CLIENT", "KILL", "ID", id])
        for k in 0..<20 {
            batch += RESP.encode(["EVALSHA", sha, "2", "t-backfill:history:feed", "t-backfill:meta:feed", "t-backfill:room:feed", "\"k\(k)\"", "1000"])
        }
        try raw.send(batch)
        var parser = RESPParser()
        var replies: [RESP] = []
        let until = Date().addingTimeInterval(5)
        while replies.count < 21 && Date() < until {
            _ = try raw.fill(timeout: 1)
            while let v = try parser.parse(&raw.buffer) { replies.append(v) }
        }
        #expect(replies.first == .integer(1), "the subscriber connection was killed")
        #expect(done.wait(timeout: .now() + 20) == .success)
        let expected = (0..<total).map(String.init) + (0..<20).map { "\"k\($0)\"" }
        for m in members {
            let got = try messages(m, quiet: 1.5)
            let data = got.map(dataText)
            #expect(data.count == expected.count && Set(data) == Set(expected), "member got \(data.count) of \(expected.count), each once")
            #expect(data.filter { !$0.hasPrefix("\"") } == (0..<total).map(String.init), "the WebSocket publisher's order is kept")
            let offsets = got.compactMap { $0.offset.flatMap(StreamOffset.init) }
            #expect(zip(offsets, offsets.dropFirst()).allSatisfy { $1.isAfter($0) }, "one offset order, no duplicates")
        }
        #expect((try b.metric("switchboard_redis_reconnects_total{conn=\"subscriber\"}") ?? 0) >= 1)
        #expect((try b.metric("switchboard_bus_backfilled_messages_total") ?? 0) >= 20, "the gap was closed by back-fill")
        #expect(try redis.clientID(named: "switchboard-sub-b") != id)
    }

    @Test func sigkilledNodesPresenceEntriesAreGoneWithinTwiceTheTTL() throws {
        let prefix = "t-presence:"
        let (redis, nodes) = try cluster(prefix: prefix)  // defaults: heartbeat 2 s, node TTL 6 s
        defer { withExtendedLifetime((redis, nodes)) {} }
        let members = try nodes.map { try WSClient(port: $0.port) }
        for m in members { _ = try m.join("lobby") }
        let fields = { () throws -> Set<String> in
            let flat = try redis.command(["HGETALL", prefix + "presence:lobby"]).array ?? []
            return Set(stride(from: 0, to: flat.count, by: 2).compactMap { flat[$0].text })
        }
        try waitUntil(3, "three presence entries") { try fields() == ["a", "b", "c"] }
        try members[0].sendOp("{\"op\":\"presence\",\"room\":\"lobby\"}")
        #expect(try members[0].nextJSON().count == 3)

        nodes[2].stop(signal: SIGKILL)
        let killedAt = Date()
        try waitUntil(13, "c's presence entry removed") { try !fields().contains("c") }
        let elapsed = Date().timeIntervalSince(killedAt)
        #expect(elapsed < 12, "removed after \(elapsed)s; 2 × TTL is 12 s")
        #expect(try fields() == ["a", "b"])
        #expect(try redis.command(["EXISTS", prefix + "node:c"]) == .integer(0))
        #expect(try redis.command(["SISMEMBER", prefix + "nodes", "c"]) == .integer(0))
        try members[0].sendOp("{\"op\":\"presence\",\"room\":\"lobby\"}")
        #expect(try members[0].nextJSON().count == 2)
    }

    @Test func stoppedNodeRemovesItsPresenceAndRegistryAndAnnouncesNodeDown() throws {
        let prefix = "t-stop:"
        let (redis, nodes) = try cluster(["a", "b"], prefix: prefix, ["--drain-delay", "0", "--drain-window", "0"])
        defer { withExtendedLifetime((redis, nodes)) {} }
        let members = try nodes.map { try WSClient(port: $0.port) }
        for m in members { _ = try m.join("lobby") }
        try waitUntil(3, "two presence entries") { try redis.command(["HLEN", prefix + "presence:lobby"]) == .integer(2) }
        let info = try #require(try redis.command(["GET", prefix + "node:b"]).text)
        #expect(info.contains("\"id\":\"b\"") && info.contains("\"address\":\"127.0.0.1:\(nodes[1].port)\"") && info.contains("\"draining\":false"))
        // Listen on {prefix}ctl like any consumer would.
        let watcher = try RawSocket(port: redis.port)
        try watcher.send(RESP.encode(["SUBSCRIBE", prefix + "ctl"]))
        var parser = RESPParser()
        let deadline = Date().addingTimeInterval(3)
        var events: [String] = []
        while events.isEmpty && Date() < deadline {
            _ = try watcher.fill(timeout: 0.5)
            while let v = try parser.parse(&watcher.buffer) {
                if let a = v.array, a.first?.text == "subscribe" { events.append("subscribed") }
            }
        }
        #expect(nodes[1].stop(signal: SIGTERM) == 0)
        #expect(try redis.command(["HKEYS", prefix + "presence:lobby"]) == .array([.bulk(Array("a".utf8))]))
        #expect(try redis.command(["EXISTS", prefix + "node:b"]) == .integer(0))
        var announced: [String] = []
        let until = Date().addingTimeInterval(3)
        while !announced.contains(where: { $0.contains("\"node-down\"") }) && Date() < until {
            _ = try? watcher.fill(timeout: 0.3)
            while let v = try parser.parse(&watcher.buffer) {
                if let a = v.array, a.first?.text == "message", let payload = a.last?.text { announced.append(payload) }
            }
        }
        #expect(announced.contains("{\"event\":\"node-down\",\"node\":\"b\",\"reason\":\"stopped\"}"), "\(announced)")
        #expect(announced.contains { $0.hasPrefix("{\"event\":\"node-draining\",\"node\":\"b\"") }, "\(announced)")
        try members[0].sendOp("{\"op\":\"presence\",\"room\":\"lobby\"}")
        #expect(try members[0].nextJSON().count == 1)
    }

    @Test func publishAPIReachesMembersOnAllNodesAndRejectsAWrongKey() throws {
        let (redis, nodes) = try cluster(prefix: "t-api:", ["--api-key", "s3cret"])
        defer { withExtendedLifetime((redis, nodes)) {} }
        let members = try nodes.map { try WSClient(port: $0.port) }
        for m in members { _ = try m.join("news") }
        let body = Array("{\"room\":\"news\",\"data\":{\"headline\":\"hi\"}}".utf8)
        let (status, answer) = try httpRequest(
            port: nodes[1].adminPort, method: "POST", path: "/api/publish",
            headers: ["Authorization": "Bearer s3cret", "Content-Type": "application/json"], body: body)
        #expect(status == 202 && answer.contains("\"offset\":\""))
        for m in members {
            let got = try messages(m)
            #expect(got.count == 1 && dataText(got[0]) == "{\"headline\":\"hi\"}")
            #expect(got.first.flatMap { $0.offset }.map { answer.contains($0) } == true)
        }
        let (wrong, _) = try httpRequest(
            port: nodes[1].adminPort, method: "POST", path: "/api/publish",
            headers: ["Authorization": "Bearer nope"], body: body)
        #expect(wrong == 401)
        let (missing, _) = try httpRequest(port: nodes[2].adminPort, method: "POST", path: "/api/publish", body: body)
        #expect(missing == 401)
        let (bad, reason) = try httpRequest(
            port: nodes[0].adminPort, method: "POST", path: "/api/publish",
            headers: ["Authorization": "Bearer s3cret"], body: Array("{\"data\":1}".utf8))
        #expect(bad == 400 && reason.contains("room"))
        for m in members { #expect(try messages(m, quiet: 0.3).isEmpty) }
    }

    // MARK: - More of the contract

    @Test func documentedRedisPublishPathReachesMembers() throws {
        let prefix = "t-doc:"
        let (redis, nodes) = try cluster(["a"], prefix: prefix)
        defer { withExtendedLifetime((redis, nodes)) {} }
        let member = try WSClient(port: nodes[0].port)
        _ = try member.join("backend")
        // docs/redis.md carries the script text and its SHA-1; both must match what the nodes load.
        let docsURL = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("docs/redis.md")
        let docs = try String(contentsOf: docsURL, encoding: .utf8)
        #expect(docs.contains(RedisScripts.publish.source))
        let sha = try #require(try redis.command(["SCRIPT", "LOAD", RedisScripts.publish.source]).text)
        #expect(docs.contains(sha), "docs/redis.md must list the publish script's SHA \(sha)")
        // The other scripts' SHAs are listed for reference (operators grep SCRIPT LIST / slowlogs for them).
        for script in [
            RedisScripts.read, RedisScripts.presence, RedisScripts.presenceRead, RedisScripts.heartbeat, RedisScripts.leave,
            RedisScripts.drainSlot, RedisScripts.publishSharded, RedisScripts.presenceSharded
        ] {
            let other = try #require(try redis.command(["SCRIPT", "LOAD", script.source]).text)
            #expect(docs.contains(other), "docs/redis.md must list the \(script.name) script's SHA \(other)")
        }
        let reply = try redis.command([
            "EVALSHA", sha, "2", prefix + "history:backend", prefix + "meta:backend", prefix + "room:backend",
            "{\"from\":\"backend\"}", "1000"
        ])
        let parts = try #require(reply.array)
        let offset = "\(parts[0].text ?? ""):\(parts[1].text ?? "")"
        let got = try messages(member)
        #expect(got.count == 1 && got.first?.offset == offset && got.first.map(dataText) == "{\"from\":\"backend\"}")
    }

    @Test func joinSinceRecoversFromHistoryUnlessTrimmedOrReset() throws {
        let (redis, nodes) = try cluster(["a", "b"], prefix: "t-since:", ["--history-size", "5"])
        defer { withExtendedLifetime((redis, nodes)) {} }
        let member = try WSClient(port: nodes[0].port)
        _ = try member.join("h")
        let publisher = try WSClient(port: nodes[1].port)
        for i in 0..<3 { try publish(publisher, "h", "\(i)") }
        let first = try messages(member)
        #expect(first.count == 3)
        let o0 = try #require(first[0].offset)

        let resumer = try WSClient(port: nodes[1].port)
        try resumer.sendOp("{\"op\":\"join\",\"room\":\"h\",\"since\":\"\(o0)\"}")
        let resumed = try resumer.drainJSON(quiet: 0.8)
        #expect(resumed.first?.op == "joined" && resumed.first?.recovered == true)
        #expect(resumed.dropFirst().map(dataText) == ["1", "2"])

        for i in 3..<12 { try publish(publisher, "h", "\(i)") }
        _ = try messages(member)
        let late = try WSClient(port: nodes[0].port)
        try late.sendOp("{\"op\":\"join\",\"room\":\"h\",\"since\":\"\(o0)\"}")
        let trimmed = try late.drainJSON(quiet: 0.8)
        #expect(trimmed.first?.op == "joined" && trimmed.first?.recovered == false, "history keeps 5: offset \(o0) is gone")
        #expect(trimmed.filter { $0.op == "message" }.isEmpty)

        // A reset history (the keys deleted: eviction, restart without persistence) has a new epoch.
        let last = try #require(trimmed.first?.offset)
        _ = try redis.command(["DEL", "t-since:history:h", "t-since:meta:h"])
        let fresh = try WSClient(port: nodes[1].port)
        try fresh.sendOp("{\"op\":\"join\",\"room\":\"h\",\"since\":\"\(last)\"}")
        let afterReset = try fresh.nextJSON()
        #expect(afterReset.op == "joined" && afterReset.recovered == false)
        #expect(afterReset.offset?.split(separator: ":").first != last.split(separator: ":").first, "a new epoch")
    }

    @Test func resumingWhileTrafficFlowsGetsEveryMessageOnceInOrder() throws {
        let (redis, nodes) = try cluster(["a", "b"], prefix: "t-resume:")
        defer { withExtendedLifetime((redis, nodes)) {} }
        let anchor = try WSClient(port: nodes[1].port)  // keeps the room subscribed on B
        _ = try anchor.join("flow")
        let publisher = try WSClient(port: nodes[0].port)
        try publish(publisher, "flow", "0")
        let first = try messages(anchor, quiet: 0.5)
        let since = try #require(first.first?.offset)
        let total = 300
        let boxed = TestBox(publisher)
        let done = DispatchSemaphore(value: 0)
        DispatchQueue.global().async {
            for i in 1...total {
                try? boxed.value.sendOp("{\"op\":\"publish\",\"room\":\"flow\",\"data\":\(i)}")
                usleep(500)
            }
            done.signal()
        }
        usleep(50_000)
        let resumer = try WSClient(port: nodes[1].port)
        try resumer.sendOp("{\"op\":\"join\",\"room\":\"flow\",\"since\":\"\(since)\"}")
        #expect(done.wait(timeout: .now() + 20) == .success)
        let got = try resumer.drainJSON(quiet: 1.0)
        #expect(got.first?.op == "joined" && got.first?.recovered == true)
        let data = got.filter { $0.op == "message" }.map(dataText)
        #expect(data == (1...total).map(String.init), "resumed member got \(data.count) of \(total); first \(data.prefix(5))")
    }

    @Test func wedgedRedisFailsTheCanaryMakesReadyUnavailableAndRecovers() throws {
        let (redis, nodes) = try cluster(["a", "b"], prefix: "t-canary:", ["--heartbeat-interval", "500ms", "--node-ttl", "5s"])
        defer { withExtendedLifetime((redis, nodes)) {} }
        // Every client of Redis stalls for 2.5 s: sockets stay open, nothing flows. The canary notices.
        _ = try redis.command(["CLIENT", "PAUSE", "2500", "ALL"])
        try waitUntil(3, "canary failure makes /ready 503") { (try? httpGet(port: nodes[0].adminPort, path: "/ready"))?.0 == 503 }
        let (_, body) = try httpGet(port: nodes[0].adminPort, path: "/ready")
        #expect(body.contains("\"status\":\"not_ready\""))
        for n in nodes { try waitReady(n, timeout: 15) }
        #expect((try nodes[0].metric("switchboard_bus_canary_failures_total") ?? 0) >= 1)
        #expect((try nodes[0].metric("switchboard_redis_reconnects_total{conn=\"commands\"}") ?? 0) >= 1)
        let m = try WSClient(port: nodes[1].port)
        _ = try m.join("after")
        let p = try WSClient(port: nodes[0].port)
        try publish(p, "after", "1")
        #expect(try messages(m).count == 1)
    }

    @Test func invalidRedisURLExitsWithStatusTwoAndOneLine() throws {
        let p = Process()
        p.executableURL = GatewayProcess.binary
        p.arguments = ["--redis-url", "http://127.0.0.1:6379", "--admin-port", "0", "--port", "\(try freePort())"]
        let pipe = Pipe()
        p.standardError = pipe
        p.standardOutput = FileHandle.nullDevice
        try p.run()
        p.waitUntilExit()
        let err = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(p.terminationStatus == 2)
        #expect(err.split(separator: "\n").count == 1 && err.contains("--redis-url"))
    }
}

/// Hands a test-owned value to another thread (the test makes sure only one thread uses it at a time).
final class TestBox<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}
