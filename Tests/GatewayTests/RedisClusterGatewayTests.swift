import ClusterBus
import Gateway
import Foundation
import Glibc
import Protocol
import Runtime
import Testing

/// Three `switchboard` processes with `--redis-cluster` on a real three-master cluster on loopback: rooms on
/// every shard, members on every node, publishers on every node; every member gets every message once, and
/// all members of a room see one order.
@Suite(.serialized) struct RedisClusterGatewayTests {
    @Test func threeNodesOverAThreeShardClusterDeliverOnceInOneOrder() throws {
        let cluster = try RedisTestCluster(masters: 3)
        let seeds = cluster.ports.map { "127.0.0.1:\($0)" }.joined(separator: ",")
        var nodes: [GatewayProcess] = []
        for id in ["a", "b", "c"] { nodes.append(try GatewayProcess(["--redis-cluster", seeds, "--node-id", id, "--prefix", "gc:"])) }
        defer { withExtendedLifetime(nodes) {} }
        for n in nodes {
            let deadline = Date().addingTimeInterval(10)
            while Date() < deadline, (try? httpGet(port: n.adminPort, path: "/ready"))?.0 != 200 { usleep(50_000) }
            let (status, body) = try httpGet(port: n.adminPort, path: "/ready")
            #expect(status == 200 && body.contains("\"kind\":\"redis-cluster\""), "\(body)")
        }
        let keys = RedisClusterKeys(prefix: "gc:", nodeID: "x")
        let rooms = (0..<6).map { "room\($0)" }
        // redis-cli --cluster create splits the slots evenly over the three primaries, in thirds.
        #expect(Set(rooms.map { keys.slot(ofRoom: $0) * 3 / 16384 }).count == 3, "rooms on all three shards")
        let members = try nodes.map { try WSClient(port: $0.port) }
        for m in members {
            for room in rooms {
                let j = try m.join(room)
                #expect(j.op == "joined", "\(j)")
            }
        }
        let publishers = try nodes.map { try WSClient(port: $0.port) }
        for i in 0..<5 {
            for (p, publisher) in publishers.enumerated() {
                for room in rooms {
                    try publisher.sendOp("{\"op\":\"publish\",\"room\":\"\(room)\",\"data\":\"\(p)-\(i)\",\"id\":\(i * 100 + p)}")
                }
            }
        }
        for p in publishers {
            let acks = try p.drainJSON(quiet: 1.0).filter { $0.op == "ack" }
            #expect(acks.count == 5 * rooms.count)
        }
        var orders: [[String: [String]]] = []
        for m in members {
            let got = try m.drainJSON(quiet: 1.0).filter { $0.op == "message" }
            var perRoom: [String: [String]] = [:]
            for msg in got { perRoom[msg.room ?? "", default: []].append(msg.data.map { String(decoding: $0.bytes, as: UTF8.self) } ?? "") }
            #expect(got.count == 15 * rooms.count, "a member got \(got.count) of \(15 * rooms.count)")
            for room in rooms { #expect(Set(perRoom[room] ?? []).count == 15 && perRoom[room]?.count == 15, "\(room): once each") }
            orders.append(perRoom)
        }
        #expect(orders.allSatisfy { $0 == orders[0] }, "one order per room on every node")
    }

    @Test func clusterFlagsParse() throws {
        let c = try Config.parse(arguments: ["--redis-cluster", "127.0.0.1:7000,127.0.0.1:7001", "--redis-cluster", "[::1]:7002"], environment: [:])
        #expect(c.redisClusterSeeds == ["127.0.0.1:7000", "127.0.0.1:7001", "[::1]:7002"])
        #expect(Config.parseSeed("[::1]:7002")! == ("::1", 7002))
        for bad in [["--redis-cluster", "redis.local:7000"], ["--redis-cluster", "127.0.0.1"], ["--redis-cluster", "127.0.0.1:0"],
                    ["--redis-cluster", "127.0.0.1:7000", "--redis-url", "redis://127.0.0.1:6379/0"]] {
            #expect(throws: Config.Invalid.self, "\(bad)") { try Config.parse(arguments: bad, environment: [:]) }
        }
    }
}
