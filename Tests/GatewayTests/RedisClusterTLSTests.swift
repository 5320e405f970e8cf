import ClusterBus
import Foundation
import Gateway
import Glibc
import Protocol
import Runtime
import TLS
import TestSupport
import Testing

/// Redis Cluster over TLS (`rediss-cluster://`, a TLS-only three-master cluster: `--port 0 --tls-port
/// --tls-cluster yes`, the test CA's `server` leaf for 127.0.0.1), and the faults a gateway must report
/// truthfully: a certificate that does not cover the name (down, logged, counted; never plain TCP), and a
/// seed that is not in cluster mode (`/ready` 503 saying so, the failed refreshes counted).
@Suite(.serialized) struct RedisClusterTLSTests {
    typealias Recorder = RedisTLSTests.Recorder

    @Test func aTLSClusterCarriesRoomsOnEveryShardAndAWrongNameKeepsTheBusDown() throws {
        let ca = try TestCA()
        let cluster = try RedisTestCluster(
            masters: 3, tls: .init(certificate: ca.path("server.pem"), key: ca.path("server.key.pem"), ca: ca.caPath))
        let loop = try EventLoop(index: 85)
        loop.start(name: "cluster-tls")
        let keeper = LoopKeeper(loop)
        defer { keeper.stop() }

        // Trusted and named right (127.0.0.1 is in the leaf's IP SANs): every shard over TLS.
        let bus = RedisClusterBus(loop: loop, seeds: [("127.0.0.1", cluster.ports[0])], prefix: "tc:", nodeID: "t")
        bus.useTLS(RedisTLSSettings(caFile: ca.caPath))
        let recorder = Recorder()
        bus.start(delegate: recorder)
        keeper.keep(bus)
        defer { bus.shutdown {} }
        #expect(wait(5) { bus.state == .up }, "\(bus.clusterMetrics.health.json)")
        let keys = RedisClusterKeys(prefix: "tc:", nodeID: "x")
        let rooms = (0..<9).map { "room\($0)" }
        #expect(Set(rooms.map { keys.slot(ofRoom: $0) * 3 / 16384 }).count == 3, "rooms on all three shards")
        for room in rooms {
            bus.subscribe(room: room)
            guard case .success? = sync({ done in bus.join(room: room, since: nil) { done($0) } }) else { Issue.record("join \(room)"); return }
            let r = sync { done in bus.publish(room: room, data: JSONFragment("\"\(room)\""), idempotencyKey: nil) { done($0) } }
            guard case .success? = r else { Issue.record("publish \(room): \(String(describing: r))"); return }
        }
        #expect(wait(5) { recorder.messages.withLock { $0.count } == rooms.count })
        #expect(bus.clusterMetrics.tls.completed.reduce(0) { $0 + $1.load() } >= 3, "TLS to every primary (commands and subscriber)")

        // The same cluster, a name its certificate does not cover: down, the reason logged and counted.
        let logs = Lock<[String]>([])
        let strict = RedisClusterBus(
            loop: loop, seeds: [("127.0.0.1", cluster.ports[1])], prefix: "tc:", nodeID: "s",
            logger: { _, message, fields in logs.withLock { $0.append(message + " " + fields.map { "\($0.1)" }.joined(separator: " ")) } })
        strict.useTLS(RedisTLSSettings(caFile: ca.caPath, serverName: "other.test"))
        strict.start(delegate: Recorder())
        keeper.keep(strict)
        defer { strict.shutdown {} }
        let m = strict.clusterMetrics
        #expect(wait(3) { m.health.lastError?.contains("certificate verification failed") == true }, "\(m.health.json)")
        #expect(strict.state == .down && m.health.slotMapState == "down")
        #expect(m.nodeCounts.first { $0.node == "127.0.0.1:\(cluster.ports[1])" }?.counts.failures ?? 0 >= 1, "\(m.nodeCounts)")
        #expect(wait(3) { m.refreshesFailed.load() >= 1 })
        #expect(
            logs.withLock { $0.contains { $0.hasPrefix("redis cluster node connection failed") && $0.contains("certificate verification failed") } },
            "\(logs.withLock { $0 })")
        var w = PrometheusWriter()
        strict.writeClusterMetrics(to: &w)
        #expect(w.text.contains("switchboard_redis_cluster_node_failures_total{node=\"127.0.0.1:\(cluster.ports[1])\"} "))
        #expect(w.text.contains("switchboard_redis_cluster_tls_handshakes_total{result=\"ok\"} 0\n"), "no handshake completed")

        // A gateway over rediss-cluster:// with the CA flag: ready, and the cluster's detail in /ready and /metrics.
        let gw = try GatewayProcess(["--redis-url", "rediss-cluster://127.0.0.1:\(cluster.ports[2])", "--redis-tls-ca", ca.caPath, "--node-id", "tls-c"])
        let deadline = Date().addingTimeInterval(10)
        while Date() < deadline, (try? httpGet(port: gw.adminPort, path: "/ready"))?.0 != 200 { usleep(50_000) }
        let (status, body) = try httpGet(port: gw.adminPort, path: "/ready")
        #expect(status == 200 && body.contains(#""redis_cluster":{"slot_map":"ok","cluster_state":"ok","primaries":3,"uncovered_slots":0"#), "\(body)")
        #expect(try gw.metric("switchboard_redis_cluster_tls_handshakes_total{result=\"ok\"}") ?? 0 >= 1)
        #expect(try gw.metric("switchboard_redis_cluster_primaries") == 3)
        let member = try WSClient(port: gw.port)
        #expect(try member.join("secure").op == "joined")
        try member.sendOp(#"{"op":"publish","room":"secure","data":"over TLS","id":1}"#)
        let got = try member.drainJSON(quiet: 1.0)
        #expect(got.contains { $0.op == "ack" } && got.contains { $0.op == "message" })
    }

    @Test func aSeedThatIsNotInClusterModeIsReportedNotReady() throws {
        let redis = try RedisServer()
        let gw = try GatewayProcess(["--redis-cluster", "127.0.0.1:\(redis.port)", "--node-id", "not-cluster"])
        let deadline = Date().addingTimeInterval(5)
        while Date() < deadline, !((try? httpGet(port: gw.adminPort, path: "/ready"))?.1.contains("not in cluster mode") ?? false) { usleep(50_000) }
        let (status, body) = try httpGet(port: gw.adminPort, path: "/ready")
        #expect(status == 503, "\(body)")
        #expect(body.contains(#""slot_map":"down""#) && body.contains("cluster support disabled") && body.contains("not in cluster mode"), "\(body)")
        #expect(try gw.metric("switchboard_redis_cluster_refreshes_total{result=\"failed\"}") ?? 0 >= 1)
        #expect(try gw.metric("switchboard_redis_cluster_uncovered_slots") == 16384)
        #expect(try gw.metric("switchboard_redis_cluster_primaries") == 0)
        #expect(gw.log().contains("redis cluster slot map unavailable"), "\(gw.log())")
        // Said once, not on every 2 s refresh.
        usleep(2_200_000)
        #expect(gw.log().components(separatedBy: "redis cluster slot map unavailable").count - 1 == 1)
    }
}
