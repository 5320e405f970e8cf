import Foundation
import Glibc
import Runtime
import TestSupport
import Testing

@testable import ClusterBus

/// The slot map from `CLUSTER SHARDS` and the redirects, as values and against a real three-master cluster
/// on loopback (our `RedisConnection` talks to it; keys from `RedisClusterKeys` land where the map says).
@Suite(.serialized) struct RedisClusterMapTests {
    static func node(_ id: String, _ port: Int, _ role: String, health: String = "online") -> RedisReply {
        func s(_ t: String) -> RedisReply { .string(Array(t.utf8)) }
        return .array([
            s("id"), s(id), s("port"), .integer(Int64(port)), s("ip"), s("127.0.0.1"), s("endpoint"), s("127.0.0.1"),
            s("role"), s(role), s("replication-offset"), .integer(0), s("health"), s(health)
        ])
    }

    static func shard(_ ranges: [(Int, Int)], _ nodes: [RedisReply]) -> RedisReply {
        .array([
            .string(Array("slots".utf8)), .array(ranges.flatMap { [.integer(Int64($0.0)), .integer(Int64($0.1))] }),
            .string(Array("nodes".utf8)), .array(nodes)
        ])
    }

    @Test func parsesShardsPrimariesReplicasAndGaps() throws {
        let reply = RedisReply.array([
            Self.shard([(0, 5460)], [Self.node("a", 7000, "master"), Self.node("d", 7003, "replica")]),
            Self.shard([(5461, 10922)], [Self.node("b", 7001, "master", health: "fail"), Self.node("e", 7004, "replica")]),
            Self.shard([(10923, 16000), (16002, 16383)], [Self.node("c", 7002, "master")])
        ])
        let map = try RedisClusterMap(shardsReply: reply)
        #expect(map.shards.count == 3)
        #expect(map.primary(ofSlot: 0)?.port == 7000 && map.primary(ofSlot: 5460)?.port == 7000)
        #expect(map.shard(ofSlot: 0)?.replicas.map(\.port) == [7003])
        #expect(map.primary(ofSlot: 6000) == nil, "a failed primary serves nothing until its replica is promoted")
        #expect(map.uncoveredSlots == [5461...10922, 16001...16001])
        var moved = map
        moved.move(slot: 16001, to: "127.0.0.1", port: 7002)
        moved.move(slot: 6000, to: "127.0.0.1", port: 7004)
        #expect(moved.primary(ofSlot: 16001)?.port == 7002 && moved.primary(ofSlot: 6000)?.port == 7004)
    }

    @Test func refusesWhatIsNotASlotMap() {
        let bad: [RedisReply] = [
            .error("ERR This instance has cluster support disabled"), .status("OK"), .array([.integer(1)]),
            .array([.array([.string(Array("slots".utf8)), .array([.integer(0)]), .string(Array("nodes".utf8)), .array([])])]),
            .array([Self.shard([(10, 5)], [Self.node("a", 7000, "master")])]),
            .array([Self.shard([(0, 16384)], [Self.node("a", 7000, "master")])]),
            .array([Self.shard([(0, 1)], [.array([.string(Array("id".utf8)), .string(Array("x".utf8))])])])
        ]
        for r in bad { #expect(throws: RedisClusterError.self, "\(r)") { try RedisClusterMap(shardsReply: r) } }
    }

    @Test func redirects() {
        #expect(RedisRedirect(error: "MOVED 3999 127.0.0.1:6381") == .moved(slot: 3999, host: "127.0.0.1", port: 6381))
        #expect(RedisRedirect(error: "ASK 3999 [::1]:6381") == .ask(slot: 3999, host: "::1", port: 6381))
        #expect(RedisRedirect(error: "MOVED 3999 :6381") == .moved(slot: 3999, host: "", port: 6381), "Redis 7: same host as the answering node")
        for bad in ["MOVED 16384 h:1", "MOVED x h:1", "MOVED 1 h", "MOVED 1 h:0", "ERR wrong", "ASK 1 h:1 extra", "CLUSTERDOWN The cluster is down"] {
            #expect(RedisRedirect(error: bad) == nil, "\(bad)")
        }
    }

    // MARK: - A real cluster

    @Test func aRealThreeMasterClusterRoutesRoomKeysToTheirShards() throws {
        let cluster = try RedisTestCluster(masters: 3)
        let loop = try EventLoop(index: 97)
        loop.start(name: "cluster-map-test")
        defer { loop.stopAndWait(timeoutMilliseconds: 2000) }
        let context = SocketContext(loop: loop)
        let client = SyncRedis(loop: loop, context: context)

        let map = try RedisClusterMap(shardsReply: try #require(client.command(port: cluster.ports[0], ["CLUSTER", "SHARDS"])))
        #expect(map.shards.count == 3 && map.uncoveredSlots.isEmpty)
        #expect(Set(map.shards.compactMap { $0.primary?.port }) == Set(cluster.ports))

        // A seed not in cluster mode is a clear error.
        let plainPort = try freeTCPPort()
        let plain = try startRedis(port: plainPort)
        defer { kill(plain.processIdentifier, SIGKILL); plain.waitUntilExit() }
        usleep(200_000)
        let refused = try #require(client.command(port: plainPort, ["CLUSTER", "SHARDS"]))
        #expect(throws: RedisClusterError.self) { try RedisClusterMap(shardsReply: refused) }

        let keys = RedisClusterKeys(prefix: "sb:", nodeID: "n1")
        var shardsUsed = Set<Int>()
        for i in 0..<30 {
            let room = i % 5 == 0 ? "r{\(i)}" : "room-\(i)"
            let slot = keys.slot(ofRoom: room)
            let owner = try #require(map.primary(ofSlot: slot))
            shardsUsed.insert(owner.port)
            #expect(client.command(port: owner.port, ["CLUSTER", "KEYSLOT", keys.history(room)]) == .integer(Int64(slot)))
            // One multi-key command over the room's keys: no CROSSSLOT on the owner.
            #expect(
                client.command(
                    port: owner.port,
                    ["MSET", keys.meta(room), "1", keys.presence(room), "2", keys.idempotency(room, key: "k")]
                        + ["3"]) == .status("OK"))
            let other = try #require(cluster.ports.first { $0 != owner.port })
            let answer = client.command(port: other, ["GET", keys.meta(room)])
            #expect(answer?.errorMessage.flatMap(RedisRedirect.init(error:)) == .moved(slot: slot, host: "127.0.0.1", port: owner.port))
        }
        #expect(shardsUsed.count == 3, "rooms spread over all shards")
    }
}

/// Blocking helper over our `RedisConnection` for tests: one connection per command, answered on `loop`.
final class SyncRedis: @unchecked Sendable {
    let loop: EventLoop
    let context: SocketContext
    init(loop: EventLoop, context: SocketContext) {
        self.loop = loop
        self.context = context
    }

    func command(port: Int, _ args: [String]) -> RedisReply? {
        let box = Lock<RedisReply?>(nil)
        let done = DispatchSemaphore(value: 0)
        loop.execute { [self] in
            guard case .success(let c) = RedisConnection.open(host: "127.0.0.1", port: port, context: context, role: "test") else {
                done.signal()
                return
            }
            let sent = c.send(RedisCommand(args)) { reply in
                box.withLock { $0 = reply }
                c.close()
                done.signal()
            }
            if !sent { done.signal() }
        }
        guard done.wait(timeout: .now() + 5) == .success else { return nil }
        return box.withLock { $0 }
    }
}
