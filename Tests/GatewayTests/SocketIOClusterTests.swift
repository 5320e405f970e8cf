import Foundation
import Glibc
import Testing

/// Issue 13, "Done when", on a cluster: a real `redis-server`, two gateway nodes on the Redis bus and
/// Debian's HAProxy with the shipped deploy/haproxy/haproxy.cfg (its stickiness cookie included), driven
/// by python-socketio clients and a native room-protocol client (scripts/socketio-e2e.py `cluster`).
@Suite(.serialized) struct SocketIOClusterTests {
    typealias Node = RollingDeployTests.Node
    typealias HAProxy = RollingDeployTests.HAProxy

    @Test func acrossNodesMixedRoomAndRecoveryAfterADrain() throws {
        let redis = try RedisServer()
        defer { withExtendedLifetime(redis) {} }
        try Self.checkAcrossNodes(bus: ["--redis-url", redis.url])
    }

    /// The scenario on the bus `bus` selects (`--redis-url …` or `--redis-cluster …`): two nodes behind HAProxy,
    /// Socket.IO and native clients in one room, then a drain moves a Socket.IO client, which recovers
    /// through the bus's session records.
    static func checkAcrossNodes(bus: [String]) throws {
        let apiKey = "sio-test-key"
        let args =
            bus + [
                "--prefix", "sio:", "--socketio-path", "/socket.io/", "--jwt-secret", TestKeys.shared.secret,
                "--api-key", apiKey, "--trusted-proxies", "127.0.0.1",
                "--drain-delay", "300ms", "--drain-window", "300ms", "--drain-deadline", "5s"
            ]
        let nodes = try ["sio1", "sio2"].map { try Node(id: $0, arguments: args) }
        for n in nodes { try n.start() }
        let lb = try HAProxy(nodes: nodes)
        defer { withExtendedLifetime((nodes, lb)) {} }
        for n in nodes { try lb.waitUp(n.id) }

        let r = try SocketIOGatewayTests.driver([
            "cluster", "--url", "http://127.0.0.1:\(lb.port)", "--token", TokenFactory.make(),
            "--admins", nodes.map { String($0.adminPort) }.joined(separator: ","),
            "--pids", nodes.map { String($0.pid) }.joined(separator: ","), "--api-key", apiKey
        ])
        // One Socket.IO client per node: every emit below crosses the bus.
        #expect(r["sessions_per_node"] as? [Int] == [1, 1])
        // Acks carry the offsets; both Socket.IO clients and the native client saw the same 20 messages
        // (10 emitted alternately from each node, 10 native publishes) in the same order.
        let acks = r["acks"] as? [String] ?? []
        let first = (r["first"] as? [[Any]] ?? []).map { $0.first as? String ?? "" }
        let second = (r["second"] as? [[Any]] ?? []).map { $0.first as? String ?? "" }
        let native = (r["native"] as? [[Any]] ?? []).map { $0.first as? String ?? "" }
        #expect(acks.count == 10 && first.count == 20)
        #expect(first == second && first == native, "orders differ:\n\(first)\n\(second)\n\(native)")
        #expect(Set(acks).isSubset(of: Set(first)))

        // SIGTERM on the node of the first client (long-polling, upgraded): it reconnected through HAProxy to the
        // other node (its stickiness cookie redispatched) with the pid it was given,
        // was told it recovered, and got every message published meanwhile exactly once, in order.
        #expect(r["moved"] as? Int == 1 && r["moved_is_first"] as? Bool == true)
        #expect((r["moved_recovered"] as? [Bool])?.last == true, "recovered flags: \(r["moved_recovered"] ?? "none")")
        let published = r["published"] as? [String] ?? []
        #expect(published.count == 40 && published.allSatisfy { !$0.hasPrefix("error") })
        #expect(r["moved_after"] as? [String] == published, "moved client got \(r["moved_after"] ?? "none")")
        #expect(r["stayed_after"] as? [String] == published)
        let victim = r["victim"] as? Int ?? 0
        #expect(nodes[victim].waitExit(10) == 0)
        #expect(nodes[1 - victim].metric("switchboard_protocol_recoveries_total{protocol=\"socketio\",result=\"recovered\"}") == 1)
        #expect(r["sessions_on_survivor"] as? Int == 2)
    }
}
