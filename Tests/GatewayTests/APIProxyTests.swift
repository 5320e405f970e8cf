import Foundation
import Glibc
import Protocol
import Runtime
import Testing

/// The backend proxy (`--proxy-url`) against a real HTTP backend started by the test (issue 14, "Done when"):
/// rpc round trip, retries, a hanging backend, the publish proxy across two nodes, connection events.
@Suite(.serialized) struct APIProxyTests {
    /// The application backend: rpc methods `echo`, `flaky` (500 twice, then a result), `hang`, `fail`
    /// (an error object); publishes to rooms with "bad" in the data are refused, "rewrite" is rewritten.
    static func backend() throws -> FakeAuthBackend {
        let flaky = Lock(0)
        return try FakeAuthBackend { _, body in
            guard let o = (try? JSONSerialization.jsonObject(with: Data(body.utf8))) as? [String: Any] else { return .respond(400, "{}") }
            switch o["type"] as? String {
            case "rpc":
                switch o["method"] as? String {
                case "echo":
                    let result: [String: Any] = ["got": o["data"] ?? NSNull(), "user": o["user"] ?? NSNull(), "node": o["node"] ?? NSNull()]
                    return .respond(200, APIProxyTests.json(["result": result]))
                case "flaky":
                    let n = flaky.withLock {
                        $0 += 1; return $0
                    }
                    return n <= 2 ? .respond(500, "{}") : .respond(200, #"{"result":"third time"}"#)
                case "hang": return .hang(2)
                case "fail": return .respond(200, #"{"error":{"code":"not_found","message":"no such order"}}"#)
                default: return .respond(404, "{}")
                }
            case "publish":
                let text = APIProxyTests.json(o["data"] ?? NSNull())
                if text.contains("bad") { return .respond(200, #"{"allow":false,"reason":"no bad words here"}"#) }
                if text.contains("rewrite") { return .respond(200, #"{"allow":true,"data":{"rewritten":true}}"#) }
                return .respond(200, #"{"allow":true}"#)
            case "events":
                return .respond(204, "")
            default:
                return .respond(400, "{}")
            }
        }
    }

    static func json(_ v: Any) -> String {
        String(decoding: (try? JSONSerialization.data(withJSONObject: v, options: [.fragmentsAllowed, .sortedKeys])) ?? Data(), as: UTF8.self)
    }

    static let proxyFlags = ["--proxy-try-timeout", "300ms", "--proxy-deadline", "800ms", "--proxy-retries", "2", "--auth-backoff-base", "50ms"]

    @Test func rpcRoundTripRetriesAndTimeoutWithoutStallingTheLoop() throws {
        let backend = try Self.backend()
        let gw = try GatewayProcess(
            ["--proxy-url", backend.url, "--jwt-secret", TestKeys.shared.secret, "--proxy-connect-events", "yes"] + Self.proxyFlags,
            threads: 1)
        let c = try APITest.client(gw.port, user: "alice")
        // Round trip: the backend sees the user and node, the answer carries the same id.
        try c.sendOp(#"{"op":"rpc","method":"echo","data":{"q":[1,2]},"id":"r1"}"#)
        let r1 = try APITest.next(c, op: "rpc_result")
        #expect(r1?["id"] as? String == "r1")
        let result = r1?["result"] as? [String: Any]
        #expect((result?["got"] as? [String: [Int]]) == ["q": [1, 2]] && result?["user"] as? String == "alice")
        // Failing twice, then answering: retried within the deadline, the client sees only the result.
        try c.sendOp(#"{"op":"rpc","method":"flaky","id":7}"#)
        let r2 = try APITest.next(c, op: "rpc_result")
        #expect(r2?["id"] as? Int == 7 && r2?["result"] as? String == "third time")
        #expect(backend.requests.filter { $0.body.contains("\"flaky\"") }.count == 3)
        // The backend's own error comes back as backend_error.
        try c.sendOp(#"{"op":"rpc","method":"fail","id":"r3"}"#)
        let r3 = try APITest.next(c, op: "rpc_result")
        #expect((r3?["error"] as? [String: String])?["code"] == "backend_error")
        #expect((r3?["error"] as? [String: String])?["message"]?.contains("no such order") == true)
        // A hanging backend: error timeout after the deadline, and meanwhile another client on the same
        // (only) loop is served at once.
        let other = try APITest.client(gw.port, user: "bob")
        _ = try other.join("lobby")
        let started = Date()
        try c.sendOp(#"{"op":"rpc","method":"hang","id":"r4"}"#)
        for i in 0..<5 {
            let t0 = Date()
            try other.sendOp("{\"op\":\"publish\",\"room\":\"lobby\",\"data\":\(i),\"id\":\(i)}")
            #expect(try APITest.next(other, op: "ack", timeout: 1) != nil)
            #expect(Date().timeIntervalSince(t0) < 0.25, "the loop stalled while the backend hung")
        }
        let r4 = try APITest.next(c, op: "rpc_result", timeout: 3)
        #expect((r4?["error"] as? [String: String])?["code"] == "timeout")
        let waited = Date().timeIntervalSince(started)
        #expect(waited >= 0.6 && waited < 2.0, "timeout after \(waited) s")
        // Bad rpc frames are refused by the envelope.
        try c.sendOp(#"{"op":"rpc","method":"echo"}"#)
        #expect((try APITest.next(c, op: "error")?["message"] as? String)?.contains("'id' is required") == true)
        try c.sendOp(#"{"op":"rpc","id":1}"#)
        #expect((try APITest.next(c, op: "error")?["message"] as? String)?.contains("'method' is required") == true)
        // Connection events: batched, with the user.
        try APITest.waitUntil(3, "connect events") {
            backend.requests.contains { $0.body.contains("\"type\":\"events\"") && $0.body.contains("\"connect\"") && $0.body.contains("alice") }
        }
        #expect(try gw.metric("switchboard_proxy_rpc_total{result=\"ok\"}") == 2)
        #expect(try gw.metric("switchboard_proxy_rpc_total{result=\"failed\"}") == 2)
    }

    @Test func rpcWithoutProxyAnswersUnavailable() throws {
        let gw = try GatewayProcess([], threads: 1)
        let c = try WSClient(port: gw.port)
        try c.sendOp(#"{"op":"rpc","method":"x","id":1}"#)
        let r = try APITest.next(c, op: "rpc_result")
        #expect((r?["error"] as? [String: String])?["code"] == "unavailable")
    }

    @Test func refusedPublishIsNotDeliveredOnAnyNodeAndTheClientSeesTheReason() throws {
        let backend = try Self.backend()
        let redis = try RedisServer()
        let prefix = "px\(UInt16.random(in: 0...UInt16.max)):"
        let nodes = try ["a", "b"].map { id in
            try GatewayProcess(
                [
                    "--redis-url", redis.url, "--node-id", id, "--prefix", prefix, "--proxy-url", backend.url,
                    "--proxy-publish", "mod:*", "--jwt-secret", TestKeys.shared.secret
                ] + Self.proxyFlags, threads: 1)
        }
        defer { withExtendedLifetime((redis, nodes)) {} }
        for n in nodes { try APITest.waitUntil(10, "ready") { (try? httpGet(port: n.adminPort, path: "/ready"))?.0 == 200 } }
        let publisher = try APITest.client(nodes[0].port, user: "pub")
        let member = try APITest.client(nodes[1].port, user: "mem")
        _ = try member.join("mod:1")
        _ = try publisher.join("mod:1")
        try publisher.sendOp(#"{"op":"publish","room":"mod:1","data":"a bad word","id":1}"#)
        let refused = try APITest.next(publisher, op: "error")
        #expect(refused?["code"] as? String == "refused" && refused?["message"] as? String == "no bad words here" && refused?["id"] as? Int == 1)
        try publisher.sendOp(#"{"op":"publish","room":"mod:1","data":"please rewrite","id":2}"#)
        #expect(try APITest.next(publisher, op: "ack")?["id"] as? Int == 2)
        try publisher.sendOp(#"{"op":"publish","room":"mod:1","data":"fine","id":3}"#)
        #expect(try APITest.next(publisher, op: "ack")?["id"] as? Int == 3)
        // The member on the other node got the rewrite and the allowed one, never the refused one.
        let got = try member.drainJSON(quiet: 0.5).filter { $0.op == "message" }.map { String(decoding: $0.data?.bytes ?? [], as: UTF8.self) }
        #expect(got == [#"{"rewritten":true}"#, #""fine""#])
        // A room outside the patterns is not asked about.
        let asked = backend.requests.count
        try publisher.sendOp(#"{"op":"publish","room":"lobby","data":"bad","id":4}"#)
        #expect(try APITest.next(publisher, op: "ack")?["id"] as? Int == 4)
        #expect(backend.requests.count == asked)
    }
}
