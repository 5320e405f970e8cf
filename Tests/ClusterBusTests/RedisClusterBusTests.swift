import ClusterBus
import Foundation
import Glibc
import Protocol
import Runtime
import TestSupport
import Testing

/// `RedisClusterBus` (rooms over Redis Cluster) as two or three "nodes" on a real cluster on loopback: rooms on
/// every shard delivered exactly once and in one order on each node; a primary killed while publishing,
/// its replica promoted, the room back-filled: nothing lost, nothing twice.
@Suite(.serialized) struct RedisClusterBusTests {
    final class Recorder: BusDelegate, @unchecked Sendable {
        let messages = Lock<[BusMessage]>([])
        func busDeliver(_ message: BusMessage) { messages.withLock { $0.append(message) } }
        func busStateChanged(_ state: BusState) {}
        func data(_ room: String) -> [String] {
            messages.withLock { $0.filter { $0.room == room }.map { String(decoding: $0.data.bytes, as: UTF8.self) } }
        }
    }

    func node(_ index: Int, seeds: [Int], prefix: String) throws -> (RedisClusterBus, Recorder, EventLoop) {
        let loop = try EventLoop(index: 90 + index)
        loop.start(name: "cluster-bus-\(index)")
        let bus = RedisClusterBus(loop: loop, seeds: seeds.map { ("127.0.0.1", $0) }, prefix: prefix, nodeID: "n\(index)")
        let recorder = Recorder()
        bus.start(delegate: recorder)
        return (bus, recorder, loop)
    }

    @Test func roomsOnEveryShardReachEveryNodeOnceAndInOrder() throws {
        let cluster = try RedisTestCluster(masters: 3)
        let nodes = try (0..<3).map { try node($0, seeds: [cluster.ports[$0]], prefix: "cb:") }
        defer { for n in nodes { n.2.stopAndWait(timeoutMilliseconds: 2000) } }
        #expect(wait(5) { nodes.allSatisfy { $0.0.state == .up } })
        let keys = RedisClusterKeys(prefix: "cb:", nodeID: "x")
        let rooms = (0..<9).map { "room\($0)" }
        let map = try RedisClusterMap(shardsReply: try #require(SyncRedisClient.command(port: cluster.ports[0], ["CLUSTER", "SHARDS"])))
        #expect(Set(rooms.compactMap { map.primary(ofSlot: keys.slot(ofRoom: $0))?.port }).count == 3, "rooms on all three shards")
        for (bus, _, _) in nodes {
            for room in rooms {
                bus.subscribe(room: room)
                let joined = sync { done in bus.join(room: room, since: nil) { done($0) } }
                guard case .success? = joined else { Issue.record("join \(room): \(String(describing: joined))"); return }
            }
        }
        // Every node publishes into every room, concurrently.
        let acked = Lock(0)
        for i in 0..<10 {
            for room in rooms {
                let (bus, _, _) = nodes[i % 3]
                bus.publish(room: room, data: JSONFragment("\(i)"), idempotencyKey: nil) { r in if case .success = r { acked.withLock { $0 += 1 } } }
            }
        }
        #expect(wait(10) { acked.withLock { $0 } == 90 })
        #expect(wait(10) { nodes.allSatisfy { $0.1.messages.withLock { $0.count } == 90 } })
        for room in rooms {
            let first = nodes[0].1.data(room)
            #expect(Set(first) == Set((0..<10).map(String.init)) && first.count == 10, "\(room): each message once")
            for n in nodes.dropFirst() { #expect(n.1.data(room) == first, "\(room): one order on every node") }
            let offsets = nodes[0].1.messages.withLock { $0.filter { $0.room == room }.map(\.offset) }
            #expect(zip(offsets, offsets.dropFirst()).allSatisfy { $1.isAfter($0) }, "\(room): offsets increase")
        }
    }

    @Test func aPrimaryKilledWhilePublishingLosesNothingAndDuplicatesNothing() throws {
        let cluster = try RedisTestCluster(masters: 3, replicasPerMaster: 1)
        let (subscriberBus, recorder, loopA) = try node(0, seeds: cluster.ports, prefix: "fb:")
        let (publisherBus, _, loopB) = try node(1, seeds: cluster.ports, prefix: "fb:")
        defer { loopA.stopAndWait(timeoutMilliseconds: 2000); loopB.stopAndWait(timeoutMilliseconds: 2000) }
        #expect(wait(5) { subscriberBus.state == .up && publisherBus.state == .up })
        let keys = RedisClusterKeys(prefix: "fb:", nodeID: "x")
        let room = "hot"
        let map = try RedisClusterMap(shardsReply: try #require(SyncRedisClient.command(port: cluster.ports[0], ["CLUSTER", "SHARDS"])))
        let primary = try #require(map.primary(ofSlot: keys.slot(ofRoom: room)))
        subscriberBus.subscribe(room: room)
        guard case .success? = sync({ done in subscriberBus.join(room: room, since: nil) { done($0) } }) else { Issue.record("join"); return }

        // Publish 0..<40 one after another, each retried with its idempotency key until acknowledged.
        var acked: [Int] = []
        var killed = false
        let deadline = Date().addingTimeInterval(30)
        var n = 0
        while n < 40 && Date() < deadline {
            if n == 10 && !killed {
                cluster.kill(port: primary.port)
                killed = true
            }
            let r = sync { done in publisherBus.publish(room: room, data: JSONFragment("\(n)"), idempotencyKey: "m\(n)") { done($0) } }
            if case .success? = r {
                acked.append(n)
                n += 1
            } else {
                usleep(50_000)
            }
        }
        #expect(acked == Array(0..<40), "every publish acknowledged after the failover")
        #expect(wait(10) { Set(recorder.data(room)) == Set((0..<40).map(String.init)) }, "nothing lost: \(recorder.data(room))")
        let got = recorder.data(room)
        #expect(got == (0..<40).map(String.init), "once each, in order")
    }

    @Test func aPasswordProtectedClusterNeedsTheCredentials() throws {
        let cluster = try RedisTestCluster(masters: 3, password: "s3cret")
        let loop = try EventLoop(index: 88)
        loop.start(name: "cluster-auth")
        let keeper = LoopKeeper(loop)
        defer { keeper.stop() }
        let authed = RedisClusterBus(loop: loop, seeds: [("127.0.0.1", cluster.ports[0])], password: "s3cret", prefix: "au:", nodeID: "a")
        let anonymous = RedisClusterBus(loop: loop, seeds: [("127.0.0.1", cluster.ports[1])], prefix: "au:", nodeID: "b")
        keeper.keep(authed, anonymous)
        let recorder = Recorder()
        authed.start(delegate: recorder)
        anonymous.start(delegate: Recorder())
        #expect(wait(5) { authed.state == .up })
        authed.subscribe(room: "r")
        guard case .success? = sync({ done in authed.join(room: "r", since: nil) { done($0) } }) else { Issue.record("join"); return }
        let published = sync { done in authed.publish(room: "r", data: JSONFragment("1"), idempotencyKey: nil) { done($0) } }
        guard case .success? = published else { Issue.record("publish: \(String(describing: published))"); return }
        #expect(wait(3) { recorder.data("r") == ["1"] })
        usleep(500_000)
        #expect(anonymous.state == .down, "no slot map without AUTH (NOAUTH)")
        let refused = sync { done in anonymous.publish(room: "r", data: JSONFragment("2"), idempotencyKey: nil) { done($0) } }
        if case .success? = refused { Issue.record("a publish without credentials must be refused") }
        #expect(anonymous.clusterReadinessDetail.json.contains("NOAUTH"), "\(anonymous.clusterReadinessDetail.json)")

        // A wrong password: down, the refusal named in /ready's detail, logged once, the node's failures counted.
        let logs = Lock<[String]>([])
        let wrong = RedisClusterBus(
            loop: loop, seeds: [("127.0.0.1", cluster.ports[2])], password: "guess", prefix: "au:", nodeID: "c",
            logger: { level, message, fields in
                if level == .error { logs.withLock { $0.append(message + " " + fields.map { "\($0.1)" }.joined(separator: " ")) } }
            })
        keeper.keep(wrong)
        wrong.start(delegate: Recorder())
        #expect(wait(3) { wrong.clusterMetrics.health.lastError?.contains("WRONGPASS") == true }, "\(wrong.clusterMetrics.health.json)")
        #expect(wrong.state == .down && wrong.clusterMetrics.refreshesFailed.load() >= 1)
        #expect(wait(3) { wrong.clusterMetrics.nodeCounts.first { $0.node == "127.0.0.1:\(cluster.ports[2])" }?.counts.failures ?? 0 >= 1 })
        #expect(logs.withLock { $0.contains { $0.hasPrefix("redis cluster node refused the handshake") && $0.contains("check the user and password") } })
        #expect(logs.withLock { $0.filter { $0.hasPrefix("redis cluster node refused the handshake") }.count } == 1, "not repeated every refresh")
    }
}

/// One command on a fresh plain socket (test setup only): RESP encode, read one reply with our pipeline.
enum SyncRedisClient {
    static func command(port: Int, _ args: [String]) -> RedisReply? {
        let loop = try? EventLoop(index: 89)
        guard let loop else { return nil }
        loop.start(name: "sync-redis")
        // The connection's close runs as a loop task after the reply: the context (which sockets reference
        // unowned) must outlive the loop, or that task touches freed memory.
        let context = SocketContext(loop: loop)
        defer { withExtendedLifetime(context) { _ = loop.stopAndWait(timeoutMilliseconds: 1000) } }
        return SyncRedis(loop: loop, context: context).command(port: port, args)
    }
}
