import Foundation
import Glibc
import Protocol
import Testing

/// `presence {room}` counts member connections and distinct authenticated users, across nodes (Redis) and
/// on a single node (in-process bus); a user connected twice, or on two nodes, counts once.
extension ClusterTests {
    func connect(_ gw: GatewayProcess, as user: String) throws -> WSClient {
        let token = TokenFactory.make(claims: TokenFactory.claims(sub: user))
        let c = try WSClient(port: gw.port, headers: [HTTPHeader("Authorization", "Bearer \(token)")])
        _ = try c.join("lobby")
        return c
    }

    func presence(_ c: WSClient) throws -> (count: Int?, users: Int?) {
        try c.sendOp("{\"op\":\"presence\",\"room\":\"lobby\"}")
        let m = try c.nextJSON()
        return (m.count, m.users)
    }

    @Test func presenceCountsDistinctUsersAcrossNodesAndForgetsAKilledNodesUsers() throws {
        let prefix = "t-users:"
        let (redis, nodes) = try cluster(
            prefix: prefix,
            [
                "--jwt-secret", TestKeys.shared.secret,
                "--heartbeat-interval", "500ms", "--node-ttl", "1500ms"
            ])
        defer { withExtendedLifetime((redis, nodes)) {} }
        let aliceA = try [connect(nodes[0], as: "alice"), connect(nodes[0], as: "alice")]
        let aliceB = try connect(nodes[1], as: "alice")
        let bobC = try connect(nodes[2], as: "bob")
        try waitUntil(3, "three presence entries") { try redis.command(["HLEN", prefix + "presence:lobby"]).int == 3 }
        try waitUntil(3, "presence 4 connections, 2 users") { try presence(aliceB) == (4, 2) }
        #expect(try redis.command(["SMEMBERS", prefix + "presence-users:lobby a"]) == .array([.bulk(Array("alice".utf8))]))

        // alice's two connections on a leave: she is still on b, so still 2 users.
        for c in aliceA { try c.sendOp("{\"op\":\"leave\",\"room\":\"lobby\"}") }
        try waitUntil(3, "presence 2 connections, 2 users") { try presence(bobC) == (2, 2) }
        #expect(try redis.command(["EXISTS", prefix + "presence-users:lobby a"]).int == 0, "a has no members: its user set is gone")

        // c is killed: bob's entry goes with c's registry key (node TTL 1.5 s, cleaned within 2 × TTL).
        nodes[2].stop(signal: SIGKILL)
        try waitUntil(6, "c's users removed") { try presence(aliceB) == (1, 1) }
        #expect(try redis.command(["EXISTS", prefix + "presence-users:lobby c"]).int == 0)
        withExtendedLifetime(bobC) {}
    }

    @Test func inProcessPresenceCountsDistinctUsersAndAnonymousConnectionsOnlyAsConnections() throws {
        let gw = try GatewayProcess(["--jwt-secret", TestKeys.shared.secret], threads: 2)
        let alice = try [connect(gw, as: "alice"), connect(gw, as: "alice")]
        let bob = try connect(gw, as: "bob")
        #expect(try presence(bob) == (3, 2))
        try alice[0].sendOp("{\"op\":\"leave\",\"room\":\"lobby\"}")
        _ = try alice[0].nextJSON()
        #expect(try presence(bob) == (2, 2))
        try alice[1].sendOp("{\"op\":\"leave\",\"room\":\"lobby\"}")
        _ = try alice[1].nextJSON()
        #expect(try presence(bob) == (1, 1))

        let open = try GatewayProcess(threads: 1)  // authentication off: nobody is a user
        let anonymous = try [WSClient(port: open.port), WSClient(port: open.port)]
        for c in anonymous { _ = try c.join("lobby") }
        #expect(try presence(anonymous[0]) == (2, 0))
    }
}

extension ClusterTests {
    @Test func twoLiveNodesWithOneNodeIDAreReported() throws {
        let (redis, nodes) = try cluster(["dup", "dup", "solo"], prefix: "t-dup:", ["--heartbeat-interval", "300ms"])
        defer { withExtendedLifetime((redis, nodes)) {} }
        func conflicts(_ n: GatewayProcess) -> Double { (try? n.metric("switchboard_bus_node_id_conflicts_total")) ?? 0 }
        try waitUntil(5, "a duplicate node id reported") { conflicts(nodes[0]) + conflicts(nodes[1]) > 0 }
        #expect(nodes[0].log().contains("another live node uses this node id") || nodes[1].log().contains("another live node uses this node id"))
        #expect(conflicts(nodes[2]) == 0, "a node with its own id sees no conflict")
    }
}

extension ClusterTests {
    /// A presence write Redis refuses (here OOM under `noeviction`) is written again on a later heartbeat.
    @Test func presenceRefusedByRedisIsWrittenAgainOnceRedisTakesWrites() throws {
        let (redis, nodes) = try cluster(["a"], prefix: "t-oom:", ["--jwt-secret", TestKeys.shared.secret, "--heartbeat-interval", "300ms"])
        defer { withExtendedLifetime((redis, nodes)) {} }
        let first = try [connect(nodes[0], as: "alice"), connect(nodes[0], as: "bob")]
        try waitUntil(3, "presence 2/2") { try presence(first[0]) == (2, 2) }
        _ = try redis.command(["CONFIG", "SET", "maxmemory-policy", "noeviction"])
        _ = try redis.command(["CONFIG", "SET", "maxmemory", "1"])
        let carol = try connect(nodes[0], as: "carol")
        try waitUntil(3, "the refused write logged") { nodes[0].log().contains("presence write failed") }
        _ = try redis.command(["CONFIG", "SET", "maxmemory", "0"])
        try waitUntil(3, "presence 3/3 after Redis takes writes again") { try presence(carol) == (3, 3) }
    }
}
