import Foundation
import Glibc
import Protocol
import Runtime
import TestSupport
import Testing

/// Three `switchboard` processes on one Redis Cluster, the roles beside rooms: `/api/info` lists every node
/// from the registry on the `{nodes}` slot, a server API `subscribe` sent to one node reaches the user's
/// connection on another, and a node killed with SIGKILL leaves the registry and the rooms' presence
/// within the node TTL plus one heartbeat; with `--max-draining 1` two nodes signalled at once drain in turn;
/// a Socket.IO client moved by a drain recovers on the other node.
@Suite(.serialized) struct RedisClusterRolesGatewayTests {
    @Test func infoSubscribeAndADeadNodeAcrossThreeGateways() throws {
        let cluster = try RedisTestCluster(masters: 3)
        let seeds = cluster.ports.map { "127.0.0.1:\($0)" }.joined(separator: ",")
        var nodes: [GatewayProcess] = []
        for id in ["a", "b", "c"] {
            nodes.append(
                try GatewayProcess([
                    "--redis-cluster", seeds, "--node-id", id, "--prefix", "gr:", "--api-key", APITest.key,
                    "--jwt-secret", TestKeys.shared.secret, "--heartbeat-interval", "200ms", "--node-ttl", "1s"
                ]))
        }
        defer { withExtendedLifetime(nodes) {} }
        for n in nodes { try APITest.waitUntil(10, "node ready") { (try? httpGet(port: n.adminPort, path: "/ready"))?.0 == 200 } }
        let (a, b, c) = (nodes[0], nodes[1], nodes[2])

        func listed() throws -> Set<String> {
            let info = try APITest.call(a.adminPort, "info", "{}").json
            return Set(((info["nodes"] as? [[String: Any]]) ?? []).compactMap { $0["id"] as? String })
        }
        try APITest.waitUntil(5, "info lists a, b and c") { try listed() == ["a", "b", "c"] }
        #expect(try APITest.call(a.adminPort, "info", "{}").json["bus"] as? String == "redis-cluster", "info names the bus as /ready does")

        // bob is connected to b only; the subscribe goes to a.
        let bob = try APITest.client(b.port, user: "bob")
        let sub = try APITest.call(a.adminPort, "subscribe", #"{"user":"bob","room":"news"}"#)
        #expect(sub.status == 200 && sub.json["affected"] as? Int == 1, "\(sub)")
        #expect(try APITest.next(bob, op: "joined")?["room"] as? String == "news")

        // carol on c and dave on b in one room; c is killed: its member leaves the room's presence.
        let carol = try APITest.client(c.port, user: "carol")
        let dave = try APITest.client(b.port, user: "dave")
        for m in [carol, dave] {
            try m.sendOp(#"{"op":"join","room":"lobby"}"#)
            #expect(try APITest.next(m, op: "joined") != nil)
        }
        func lobby() throws -> Int? {
            try dave.sendOp(#"{"op":"presence","room":"lobby"}"#)
            return try APITest.next(dave, op: "presence")?["count"] as? Int
        }
        try APITest.waitUntil(3, "presence 2") { try lobby() == 2 }
        c.stop(signal: SIGKILL)
        let killed = Date()
        try APITest.waitUntil(5, "the dead node's member gone from presence") { try lobby() == 1 }
        let gone = Date().timeIntervalSince(killed)
        #expect(gone < 4, "presence cleaned \(gone) s after SIGKILL (TTL 1 s + heartbeat 0.2 s)")
        #expect(try listed() == ["a", "b"])
    }

    /// The standalone drain-semaphore check (`RollingDeployTests`) with the slots on the cluster's `{nodes}` slot.
    @Test func twoNodesSignalledAtOnceWithMaxDrainingOneDrainOneAfterTheOther() throws {
        let cluster = try RedisTestCluster(masters: 3)
        defer { withExtendedLifetime(cluster) {} }
        try RollingDeployTests.checkOneDrainAtATime(bus: ["--redis-cluster", cluster.ports.map { "127.0.0.1:\($0)" }.joined(separator: ",")])
    }

    /// The standalone Socket.IO cluster scenario (`SocketIOClusterTests`): the drained client's recovery record
    /// is written by one node and read by the other through the cluster.
    @Test func socketIORecoveryAcrossNodes() throws {
        let cluster = try RedisTestCluster(masters: 3)
        defer { withExtendedLifetime(cluster) {} }
        try SocketIOClusterTests.checkAcrossNodes(bus: ["--redis-cluster", cluster.ports.map { "127.0.0.1:\($0)" }.joined(separator: ",")])
    }
}
