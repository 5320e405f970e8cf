import CHiredis
import Foundation
import Glibc
import Runtime
import TestSupport
import Testing

@testable import ClusterBus

/// The router against a real three-master cluster on loopback: commands for rooms on every shard,
/// `SSUBSCRIBE`/`SPUBLISH` per room, and a slot migrated under it (`ASK` while migrating, `MOVED` after,
/// the server's `sunsubscribe` answered by a subscription on the new owner).
@Suite(.serialized) struct RedisClusterRouterTests {
    final class Probe: @unchecked Sendable {
        let messages = Lock<[String: [String]]>([:])
        let lost = Lock<[String]>([])
        let confirmed = Lock<[String]>([])

        /// Records `router`'s `smessage` payloads and `ssubscribe` confirmations by channel, and its lost channels.
        func listen(to router: RedisClusterRouter) {
            router.onPush = { [self] reply in
                let r = RedisReply(copying: reply)
                guard let a = r.array, a.count == 3, let kind = a[0].text, let ch = a[1].text else { return }
                if kind == "smessage", let payload = a[2].text { messages.withLock { $0[ch, default: []].append(payload) } }
                if kind == "ssubscribe" { confirmed.withLock { $0.append(ch) } }
            }
            router.onSubscriptionLost = { [self] ch in lost.withLock { $0.append(ch) } }
        }
    }

    /// Runs `body` on the loop and waits for its result.
    func onLoop<T: Sendable>(_ loop: EventLoop, _ body: @escaping (@escaping (T) -> Void) -> Void) -> T? {
        let box = Lock<T?>(nil)
        let done = DispatchSemaphore(value: 0)
        nonisolated(unsafe) let run = body
        loop.execute {
            run { v in
                box.withLock { $0 = v }; done.signal()
            }
        }
        guard done.wait(timeout: .now() + 5) == .success else { return nil }
        return box.withLock { $0 }
    }

    func cli(_ port: Int, _ args: [String]) -> String {
        RedisTestCluster.cli(port, args).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    @Test func commandsAndShardedPubSubFollowASlotMigration() throws {
        let cluster = try RedisTestCluster(masters: 3)
        let loop = try EventLoop(index: 96)
        loop.start(name: "router-test")
        let keeper = LoopKeeper(loop)
        defer { keeper.stop() }
        let probe = Probe()
        // Seeds: one dead address first (skipped), then a real node.
        let deadPort = try freeTCPPort()
        nonisolated(unsafe) let router = RedisClusterRouter(loop: loop, seeds: [("127.0.0.1", deadPort), ("127.0.0.1", cluster.ports[1])])
        keeper.keep(router)
        defer { loop.execute { router.stop() } }
        probe.listen(to: router)
        let refreshed: Result<Void, RedisClusterError>? = onLoop(loop) { done in router.refresh { done($0) } }
        guard case .success? = refreshed else { Issue.record("refresh: \(String(describing: refreshed))"); return }

        let keys = RedisClusterKeys(prefix: "rt:", nodeID: "n")
        let rooms = (0..<24).map { "room-\($0)" }
        let owners = Set(rooms.compactMap { room in onLoop(loop) { done in done(router.map?.primary(ofSlot: keys.slot(ofRoom: room))?.port ?? 0) } })
        #expect(owners == Set(cluster.ports), "rooms spread over all three shards")

        // Subscribe every room on its shard, publish to each, every message arrives once.
        loop.execute { for room in rooms { router.ssubscribe(keys.roomChannel(room), slot: keys.slot(ofRoom: room)) } }
        #expect(wait(5) { probe.confirmed.withLock { $0.count } == rooms.count })
        for room in rooms {
            let r: RedisReply?? = onLoop(loop) { done in
                router.send(RedisCommand(["SPUBLISH", keys.roomChannel(room), "1"]), slot: keys.slot(ofRoom: room)) { done($0) }
            }
            #expect(r == .some(.integer(1)), "\(room): one subscriber on the owning shard")
        }
        #expect(wait(5) { probe.messages.withLock { $0.values.reduce(0) { $0 + $1.count } } == rooms.count })

        // Migrate the slot of one room from its owner to another primary, by hand (CLUSTER SETSLOT).
        let room = rooms[0]
        let slot = keys.slot(ofRoom: room)
        let source = try #require(onLoop(loop) { done in done(router.map?.primary(ofSlot: slot)) } ?? nil)
        let targetPort = try #require(cluster.ports.first { $0 != source.port })
        let sourceID = cli(source.port, ["CLUSTER", "MYID"])
        let targetID = cli(targetPort, ["CLUSTER", "MYID"])
        let written: RedisReply?? = onLoop(loop) { done in router.send(RedisCommand(["SET", keys.meta(room), "before"]), slot: slot) { done($0) } }
        #expect(written == .some(.status("OK")))
        #expect(cli(targetPort, ["CLUSTER", "SETSLOT", "\(slot)", "IMPORTING", sourceID]) == "OK")
        #expect(cli(source.port, ["CLUSTER", "SETSLOT", "\(slot)", "MIGRATING", targetID]) == "OK")
        // A key the source does not have is answered with ASK: the router asks the target.
        let asked: RedisReply?? = onLoop(loop) { done in router.send(RedisCommand(["SET", keys.history(room), "new"]), slot: slot) { done($0) } }
        #expect(asked == .some(.status("OK")))
        #expect(cli(targetPort, ["CLUSTER", "COUNTKEYSINSLOT", "\(slot)"]) == "1", "ASKING + SET landed on the importing node")
        #expect(cli(source.port, ["MIGRATE", "127.0.0.1", "\(targetPort)", "", "0", "5000", "KEYS", keys.meta(room)]) == "OK")
        for p in cluster.ports { _ = cli(p, ["CLUSTER", "SETSLOT", "\(slot)", "NODE", targetID]) }
        // The old owner now answers MOVED: the router follows, and the server's sunsubscribe moves the subscription.
        let moved: RedisReply?? = onLoop(loop) { done in router.send(RedisCommand(["GET", keys.meta(room)]), slot: slot) { done($0) } }
        #expect(moved == .some(.string(Array("before".utf8))))
        #expect(wait(5) { probe.lost.withLock { $0.contains(keys.roomChannel(room)) } }, "the subscription loss is reported (back-fill point)")
        #expect(wait(5) { probe.confirmed.withLock { $0.filter { $0 == keys.roomChannel(room) }.count } == 2 }, "subscribed again on the new owner")
        let again: RedisReply?? = onLoop(loop) { done in
            router.send(RedisCommand(["SPUBLISH", keys.roomChannel(room), "2"]), slot: slot) { done($0) }
        }
        #expect(again == .some(.integer(1)))
        #expect(wait(5) { probe.messages.withLock { $0[keys.roomChannel(room)] ?? [] } == ["1", "2"] })

        // A slot nobody subscribes in moves silently: the router's map is stale until the old owner says MOVED.
        let quiet = "quiet-room"
        let quietSlot = keys.slot(ofRoom: quiet)
        let quietSource = try #require(onLoop(loop) { done in done(router.map?.primary(ofSlot: quietSlot)) } ?? nil)
        let quietTarget = try #require(cluster.ports.first { $0 != quietSource.port })
        let quietSourceID = cli(quietSource.port, ["CLUSTER", "MYID"])
        let quietTargetID = cli(quietTarget, ["CLUSTER", "MYID"])
        let stored: RedisReply?? = onLoop(loop) { done in router.send(RedisCommand(["SET", keys.meta(quiet), "kept"]), slot: quietSlot) { done($0) } }
        #expect(stored == .some(.status("OK")))
        #expect(cli(quietTarget, ["CLUSTER", "SETSLOT", "\(quietSlot)", "IMPORTING", quietSourceID]) == "OK")
        #expect(cli(quietSource.port, ["CLUSTER", "SETSLOT", "\(quietSlot)", "MIGRATING", quietTargetID]) == "OK")
        #expect(cli(quietSource.port, ["MIGRATE", "127.0.0.1", "\(quietTarget)", "", "0", "5000", "KEYS", keys.meta(quiet)]) == "OK")
        for p in cluster.ports { _ = cli(p, ["CLUSTER", "SETSLOT", "\(quietSlot)", "NODE", quietTargetID]) }
        let before = onLoop(loop) { done in done(router.redirects) } ?? 0
        let followed: RedisReply?? = onLoop(loop) { done in router.send(RedisCommand(["GET", keys.meta(quiet)]), slot: quietSlot) { done($0) } }
        #expect(followed == .some(.string(Array("kept".utf8))))
        #expect((onLoop(loop) { done in done(router.redirects) } ?? 0) == before + 1, "one MOVED followed")
        #expect(onLoop(loop) { done in done(router.map?.primary(ofSlot: quietSlot)?.port) } == .some(quietTarget), "the map learned the move")
    }

    @Test func theShardedPublishScriptStoresAndDeliversOnTheRoomsShardOnly() throws {
        #expect(RedisScripts.publishSharded.source.contains("redis.call('SPUBLISH', ARGV[1],"))
        #expect(!RedisScripts.publishSharded.source.contains("redis.call('PUBLISH', ARGV[1],"))
        let cluster = try RedisTestCluster(masters: 3)
        let loop = try EventLoop(index: 95)
        loop.start(name: "router-script-test")
        let keeper = LoopKeeper(loop)
        defer { keeper.stop() }
        let probe = Probe()
        nonisolated(unsafe) let router = RedisClusterRouter(loop: loop, seeds: [("127.0.0.1", cluster.ports[2])])
        keeper.keep(router)
        defer { loop.execute { router.stop() } }
        probe.listen(to: router)
        let refreshed: Result<Void, RedisClusterError>? = onLoop(loop) { done in router.refresh { done($0) } }
        guard case .success? = refreshed else { Issue.record("refresh: \(String(describing: refreshed))"); return }
        let keys = RedisClusterKeys(prefix: "ps:", nodeID: "n")
        let rooms = (0..<12).map { "r\($0)" } + ["{braced}", "%pct"]
        loop.execute { for room in rooms { router.ssubscribe(keys.roomChannel(room), slot: keys.slot(ofRoom: room)) } }
        #expect(wait(5) { probe.confirmed.withLock { $0.count } == rooms.count })
        for room in rooms {
            for n in 0..<3 {
                let idem = n == 2 ? keys.idempotency(room, key: "same") : nil
                for _ in 0..<(n == 2 ? 2 : 1) {
                    var args = ["EVAL", RedisScripts.publishSharded.source, idem == nil ? "2" : "3", keys.history(room), keys.meta(room)]
                    if let idem { args.append(idem) }
                    args += [keys.roomChannel(room), "\(n)", "100", "0", "60000"]
                    let reply: RedisReply?? = onLoop(loop) { done in router.send(RedisCommand(args), slot: keys.slot(ofRoom: room)) { done($0) } }
                    #expect(reply??.array?.count ?? 0 >= 2, "\(room): \(String(describing: reply))")
                }
            }
        }
        // Each room's three messages (the repeated idempotent one stored once), in order, with offsets.
        #expect(wait(5) { probe.messages.withLock { $0.values.reduce(0) { $0 + $1.count } } == 3 * rooms.count })
        for room in rooms {
            let payloads = probe.messages.withLock { $0[keys.roomChannel(room)] ?? [] }
            #expect(payloads.count == 3 && payloads.enumerated().allSatisfy { $0.element.hasSuffix("\"data\":\($0.offset)}") }, "\(room): \(payloads)")
            let length: RedisReply?? = onLoop(loop) { done in
                router.send(RedisCommand(["XLEN", keys.history(room)]), slot: keys.slot(ofRoom: room)) { done($0) }
            }
            #expect(length == .some(.integer(3)))
        }
    }

    @Test func aKilledPrimaryIsReplacedByItsReplicaAndTheSubscriptionFollows() throws {
        let cluster = try RedisTestCluster(masters: 3, replicasPerMaster: 1)
        let loop = try EventLoop(index: 94)
        loop.start(name: "router-failover-test")
        let keeper = LoopKeeper(loop)
        defer { keeper.stop() }
        let probe = Probe()
        nonisolated(unsafe) let router = RedisClusterRouter(loop: loop, seeds: cluster.ports.map { ("127.0.0.1", $0) })
        keeper.keep(router)
        defer { loop.execute { router.stop() } }
        probe.listen(to: router)
        let refreshed: Result<Void, RedisClusterError>? = onLoop(loop) { done in router.refresh { done($0) } }
        guard case .success? = refreshed else { Issue.record("refresh: \(String(describing: refreshed))"); return }
        let keys = RedisClusterKeys(prefix: "fo:", nodeID: "n")
        let room = "failover-room"
        let slot = keys.slot(ofRoom: room)
        let channel = keys.roomChannel(room)
        let shard = try #require(onLoop(loop) { done in done(router.map?.shard(ofSlot: slot)) } ?? nil)
        let primary = try #require(shard.primary)
        let replica = try #require(shard.replicas.first)
        func publish(_ n: Int) -> RedisReply? {
            let args = [
                "EVAL", RedisScripts.publishSharded.source, "3", keys.history(room), keys.meta(room), keys.idempotency(room, key: "m\(n)"),
                channel, "\(n)", "100", "0", "60000"
            ]
            let r: RedisReply?? = onLoop(loop) { done in router.send(RedisCommand(args), slot: slot) { done($0) } }
            return r ?? nil
        }
        loop.execute { router.ssubscribe(channel, slot: slot) }
        #expect(wait(5) { probe.confirmed.withLock { $0.count } == 1 })
        #expect(publish(0)?.array?.count == 2)
        #expect(wait(3) { probe.messages.withLock { $0[channel]?.count } == 1 })
        _ = cli(primary.port, ["WAIT", "1", "1000"])  // the replica has message 0

        cluster.kill(port: primary.port)
        // Retry each publish (same idempotency key) until the promoted replica answers it.
        var stored = 0
        let deadline = Date().addingTimeInterval(20)
        var n = 1
        while n <= 5 && Date() < deadline {
            if let r = publish(n), r.array != nil { stored += 1; n += 1 } else { usleep(100_000) }
        }
        #expect(stored == 5, "publishes succeed again after the failover")
        #expect(onLoop(loop) { done in done(router.map?.primary(ofSlot: slot)?.port) } == .some(replica.port), "the replica owns the slot now")
        #expect(probe.lost.withLock { $0.contains(channel) }, "the loss was reported (the bus back-fills from there)")
        #expect(wait(5) { probe.confirmed.withLock { $0.count } >= 2 }, "subscribed again on the new primary")
        #expect(publish(6)?.array?.count == 2)
        #expect(wait(5) { probe.messages.withLock { $0[channel]?.last?.hasSuffix("\"data\":6}") ?? false } })
        // History on the new primary: 0…6 once each, in order (what back-fill would read).
        let history: RedisReply?? = onLoop(loop) { done in router.send(RedisCommand(["XRANGE", keys.history(room), "-", "+"]), slot: slot) { done($0) } }
        let data = (history??.array ?? []).compactMap { $0.array?[1].array?[1].text }
        #expect(data == (0...6).map(String.init))
    }
}
