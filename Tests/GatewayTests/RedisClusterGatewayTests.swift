import ClusterBus
import Foundation
import Gateway
import Glibc
import Protocol
import Runtime
import TestSupport
import Testing

/// Three `switchboard` processes with `--redis-cluster` on a real three-master cluster on loopback: rooms on
/// every shard, members on every node, publishers on every node; every member gets every message once, and
/// all members of a room see one order; presence asked on any node counts the members on all three.
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
        // Presence lives on each room's shard: every node counts the members on all three nodes.
        for (i, m) in members.enumerated() {
            for room in rooms {
                try m.sendOp("{\"op\":\"presence\",\"room\":\"\(room)\"}")
                var p = try m.nextJSON()
                while p.op != "presence" { p = try m.nextJSON() }
                #expect(p.count == 3, "node \(i), \(room): \(p)")
            }
        }
    }

    @Test func clusterFlagsParse() throws {
        let c = try Config.parse(arguments: ["--redis-cluster", "127.0.0.1:7000,127.0.0.1:7001", "--redis-cluster", "[::1]:7002"], environment: [:])
        #expect(c.redisClusterSeeds == ["127.0.0.1:7000", "127.0.0.1:7001", "[::1]:7002"])
        #expect(Config.parseSeed("[::1]:7002")! == ("::1", 7002))
        let url = try Config.parse(arguments: ["--redis-url", "redis-cluster://app:p%40ss@127.0.0.1:7000,127.0.0.1:7001/"], environment: [:])
        #expect(url.redisURL == nil && url.redisClusterSeeds == ["127.0.0.1:7000", "127.0.0.1:7001"])
        #expect(url.redisClusterUsername == "app" && url.redisClusterPassword == "p@ss")
        #expect(!url.loggable.contains { $0.1.contains("p@ss") || $0.1.contains("p%40ss") }, "the password is never logged")
        // Host names are seeds too (looked up by the bus off its loop); rediss-cluster:// turns TLS on.
        let named = try Config.parse(
            arguments: ["--redis-url", "rediss-cluster://:pw@redis-a.internal:7000,10.0.0.2:7001", "--redis-tls-ca", "/ca.pem"], environment: [:])
        #expect(named.redisClusterSeeds == ["redis-a.internal:7000", "10.0.0.2:7001"] && named.redisClusterTLS && named.redisClusterPassword == "pw")
        #expect(named.redisTLS.caFile == "/ca.pem" && !url.redisClusterTLS)
        #expect(Config.parseSeed("redis_1.svc.cluster.local:6379")! == ("redis_1.svc.cluster.local", 6379))
        for bad in [
            ["--redis-url", "redis-cluster://"], ["--redis-url", "rediss-cluster://"], ["--redis-cluster", "-bad.local:7000"],
            ["--redis-cluster", "a..b:7000"], ["--redis-cluster", "has space:7000"], ["--redis-cluster", "[redis.local]:7000"],
            ["--redis-cluster", "127.0.0.1"], ["--redis-cluster", "127.0.0.1:0"],
            ["--redis-cluster", "127.0.0.1:7000", "--redis-url", "redis://127.0.0.1:6379/0"]
        ] {
            #expect(throws: Config.Invalid.self, "\(bad)") { try Config.parse(arguments: bad, environment: [:]) }
        }
    }

    @Test func aPrimaryKilledWhileClientsPublishLosesNothingAndDuplicatesNothing() throws {
        let cluster = try RedisTestCluster(masters: 3, replicasPerMaster: 1)
        let seeds = cluster.ports.map { "127.0.0.1:\($0)" }.joined(separator: ",")
        var nodes: [GatewayProcess] = []
        for id in ["a", "b", "c"] { nodes.append(try GatewayProcess(["--redis-cluster", seeds, "--node-id", id, "--prefix", "gf:"])) }
        defer { withExtendedLifetime(nodes) {} }
        for n in nodes {
            let deadline = Date().addingTimeInterval(10)
            while Date() < deadline, (try? httpGet(port: n.adminPort, path: "/ready"))?.0 != 200 { usleep(50_000) }
        }
        let room = "hot"
        let slot = RedisClusterKeys(prefix: "gf:", nodeID: "x").slot(ofRoom: room)
        // The primary serving the slot, from redis-cli's view of the cluster.
        let owner = try #require(
            RedisTestCluster.cli(cluster.ports[0], ["CLUSTER", "NODES"]).split(separator: "\n").compactMap { line -> Int? in
                let f = line.split(separator: " ")
                guard f.count > 8, f[2].contains("master"), !f[2].contains("fail") else { return nil }
                for range in f[8...] {
                    let b = range.split(separator: "-").compactMap { Int($0) }
                    if b.count == 2, (b[0]...b[1]).contains(slot) { return Int(f[1].split(separator: ":")[1].split(separator: "@")[0]) }
                }
                return nil
            }.first)
        let members = try nodes.map { try WSClient(port: $0.port) }
        for m in members { #expect(try m.join(room).op == "joined") }
        let publisher = try WSClient(port: nodes[1].port)
        var n = 0
        var refused = 0
        let deadline = Date().addingTimeInterval(40)
        while n < 30 && Date() < deadline {
            if n == 10 { cluster.kill(port: owner) }
            try publisher.sendOp("{\"op\":\"publish\",\"room\":\"\(room)\",\"data\":\(n),\"id\":\(n)}")
            var answered = false
            while !answered {
                let m = try publisher.nextJSON(timeout: 10)
                guard m.id.map({ String(decoding: $0.bytes, as: UTF8.self) }) == "\(n)" else { continue }
                answered = true
                if m.op == "ack" { n += 1 } else { refused += 1; usleep(100_000) }  // unavailable / unknown: retry with the same id
            }
        }
        #expect(n == 30, "every publish acknowledged after the failover")
        #expect(refused > 0, "the kill hit the room's shard: publishes were refused until the replica took over")
        for m in members {
            let got = try m.drainJSON(quiet: 2.0).filter { $0.op == "message" }.map { $0.data.map { String(decoding: $0.bytes, as: UTF8.self) } ?? "" }
            #expect(got == (0..<30).map(String.init), "once each, in order: \(got)")
        }
    }
}
