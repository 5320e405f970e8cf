import Foundation
import Glibc
import Protocol
import Testing

/// Analytics throttling with the in-process bus: per-connection and per-user token buckets, one
/// `throttled` notice per second, accepted events readable from the admin endpoint.
@Suite(.serialized) struct AnalyticsTests {
    @Test func floodGetsTheConfiguredRateThroughAndOneNoticePerSecond() throws {
        let gw = try GatewayProcess(["--analytics-rate", "20", "--analytics-burst", "10", "--api-key", "k"], threads: 1)
        let c = try WSClient(port: gw.port)
        let seconds = 2.0
        let start = Date()
        var sent = 0
        // 1,000 events/s for two seconds, in bursts of 10 every 10 ms.
        while Date().timeIntervalSince(start) < seconds {
            var burst: [UInt8] = []
            for _ in 0..<10 {
                burst += FrameEncoder.frame(
                    opcode: .text, payload: Array("{\"op\":\"analytics\",\"event\":\"click\",\"data\":{\"n\":\(sent)},\"room\":\"r\"}".utf8),
                    maskingKey: UInt32.random(in: 0...UInt32.max))
                sent += 1
            }
            try c.socket.send(burst)
            usleep(10_000)
        }
        let elapsed = Date().timeIntervalSince(start)
        let replies = try c.drainJSON(quiet: 0.5)
        let notices = replies.filter { $0.op == "error" && $0.code == "throttled" }
        usleep(200_000)  // the batcher flushes within 50 ms
        let accepted = try #require(try gw.metric("switchboard_analytics_events_total{result=\"accepted\"}"))
        // Token bucket: burst + rate x elapsed, give or take one interval either side.
        let expected = 10 + 20 * elapsed
        #expect(abs(accepted - expected) <= 20 * 0.25 + 1, "accepted \(accepted), expected about \(expected) of \(sent) sent")
        #expect(notices.count >= 1 && Double(notices.count) <= elapsed.rounded(.up) + 1, "notices: \(notices.count)")
        #expect(c.socket.fd >= 0)
        let (status, body) = try httpRequest(port: gw.adminPort, method: "GET", path: "/api/analytics?count=10000", headers: ["Authorization": "Bearer k"])
        #expect(status == 200)
        let json = try JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any]
        let events = json?["events"] as? [[String: Any]] ?? []
        #expect(Double(events.count) == accepted, "stream holds every accepted event")
        #expect(events.first?["event"] as? String == "click" && events.first?["room"] as? String == "r")
        #expect(try httpRequest(port: gw.adminPort, method: "GET", path: "/api/analytics").0 == 401)
        print("analytics: sent \(sent) in \(String(format: "%.2f", elapsed)) s, accepted \(Int(accepted)), notices \(notices.count)")
    }
}

/// Analytics across the cluster: one user's budget is shared by every node (GCRA script in Redis), and
/// accepted events land in the Redis stream `{prefix}analytics` with user, node, room and server time.
@Suite(.serialized) struct ClusterAnalyticsTests {
    @Test func twoConnectionsOfOneUserOnTwoNodesShareOneBudget() throws {
        let redis = try RedisServer()
        let keys = TestKeys.shared
        let flags = [
            "--redis-url", redis.url, "--prefix", "an\(UInt16.random(in: 0...UInt16.max)):", "--jwt-secret", keys.secret,
            "--analytics-rate", "10", "--analytics-burst", "10", "--api-key", "k"
        ]
        let a = try GatewayProcess(flags + ["--node-id", "a"], threads: 1)
        let b = try GatewayProcess(flags + ["--node-id", "b"], threads: 1)
        for gw in [a, b] {
            let deadline = Date().addingTimeInterval(10)
            while Date() < deadline, (try? httpGet(port: gw.adminPort, path: "/ready"))?.0 != 200 { usleep(50_000) }
        }
        let token = TokenFactory.make(claims: TokenFactory.claims(sub: "carol"))
        let other = TokenFactory.make(claims: TokenFactory.claims(sub: "dave"))
        let onA = try WSClient(port: a.port, headers: [HTTPHeader("Authorization", "Bearer \(token)")])
        let onB = try WSClient(port: b.port, headers: [HTTPHeader("Authorization", "Bearer \(token)")])
        let dave = try WSClient(port: b.port, headers: [HTTPHeader("Authorization", "Bearer \(other)")])
        let start = Date()
        // Each of carol's connections sends 15 events/s for 2 s: 30 events/s in all against one 10/s budget.
        for i in 0..<30 {
            try onA.sendText("{\"op\":\"analytics\",\"event\":\"a\(i)\"}")
            try onB.sendText("{\"op\":\"analytics\",\"event\":\"b\(i)\"}")
            if i % 2 == 0 { try dave.sendText("{\"op\":\"analytics\",\"event\":\"d\(i)\"}") }
            usleep(66_000)
        }
        let elapsed = Date().timeIntervalSince(start)
        usleep(300_000)
        let acceptedA = try #require(try a.metric("switchboard_analytics_events_total{result=\"accepted\"}"))
        let acceptedB = try #require(try b.metric("switchboard_analytics_events_total{result=\"accepted\"}"))
        let daveEvents = 15.0
        let carol = acceptedA + acceptedB - daveEvents
        // One shared budget: burst 10 + 10/s x elapsed, not twice that (each connection alone stays under its own 10/s).
        let expected = 10 + 10 * elapsed
        #expect(abs(carol - expected) <= 4, "carol accepted \(carol) across two nodes, one budget allows about \(expected)")
        #expect(acceptedA > 0 && acceptedB - daveEvents > 0, "both nodes took part (a: \(acceptedA), b: \(acceptedB))")
        let (status, body) = try httpRequest(port: a.adminPort, method: "GET", path: "/api/analytics?count=1000", headers: ["Authorization": "Bearer k"])
        #expect(status == 200)
        let events = (try JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any])?["events"] as? [[String: Any]] ?? []
        #expect(Double(events.count) == acceptedA + acceptedB, "the stream holds every accepted event of both nodes")
        #expect(Set(events.compactMap { $0["node"] as? String }) == ["a", "b"])
        #expect(events.filter { $0["user"] as? String == "dave" }.count == Int(daveEvents))
        print(
            "cluster analytics: carol accepted \(Int(carol)) of 60 over \(String(format: "%.2f", elapsed)) s (budget ≈ \(Int(expected))), dave \(Int(daveEvents)) of 15"
        )
    }
}
