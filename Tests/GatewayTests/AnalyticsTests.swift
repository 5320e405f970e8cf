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
                burst += FrameEncoder.frame(opcode: .text, payload: Array("{\"op\":\"analytics\",\"event\":\"click\",\"data\":{\"n\":\(sent)},\"room\":\"r\"}".utf8),
                                            maskingKey: UInt32.random(in: 0...UInt32.max))
                sent += 1
            }
            try c.socket.send(burst)
            usleep(10_000)
        }
        let elapsed = Date().timeIntervalSince(start)
        let replies = try c.drainJSON(quiet: 0.5)
        let notices = replies.filter { $0.op == "error" && $0.code == "throttled" }
        usleep(200_000)   // the batcher flushes within 50 ms
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
