import Foundation
import Glibc
import Protocol
import Testing

/// Socket.IO sockets and the backend integration of issue 14 (issue 13, "Rooms joined by the server API and
/// the backend event proxy apply to Socket.IO clients too"): other events go to `--proxy-url` as an rpc,
/// `--proxy-publish` guards Socket.IO publishes, and the server API's subscribe / unsubscribe reach them.
@Suite(.serialized) struct SocketIOBackendTests {
    /// The next Engine.IO text that is not a server ping, within `timeout`; nil when none came.
    static func next(_ c: WSClient, timeout: TimeInterval = 3) throws -> String? {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            guard let e = try c.next(timeout: deadline.timeIntervalSinceNow) else { return nil }
            if case .text(let t) = e, t != "2" { return t }
        }
        return nil
    }

    /// The next packet, or a test failure naming what was awaited.
    static func packet(_ c: WSClient, _ what: String) throws -> String {
        guard let p = try next(c) else { throw TestFailure("no \(what) within 3 s") }
        return p
    }

    /// The arguments of an ACK `43<id>[…]` or EVENT `42[…]` packet.
    static func arguments(_ packet: String, prefix: String) throws -> [Any] {
        #expect(packet.hasPrefix(prefix), "\(packet)")
        return try #require(try JSONSerialization.jsonObject(with: Data(packet.dropFirst(prefix.count).utf8)) as? [Any])
    }

    @Test func eventsGoToTheBackendAndTheServerAPIReachesSocketIOSockets() throws {
        let backend = try APIProxyTests.backend()
        let gw = try SocketIOGatewayTests.gateway(
            ["--proxy-url", backend.url, "--api-key", APITest.key, "--proxy-publish", "lobby"]
                + APIProxyTests.proxyFlags)
        let (c, _) = try SocketIOGatewayTests.rawSession(gw)

        // An event that is not a room op: an rpc whose method is the event name and data its arguments.
        try c.sendText(#"425["echo",{"q":1},"two"]"#)
        let echoed = try Self.arguments(try Self.packet(c, "answer"), prefix: "435")
        let result = try #require(echoed.first as? [String: Any])
        #expect(APIProxyTests.json(result["got"] ?? NSNull()) == #"[{"q":1},"two"]"#)
        #expect(result["user"] as? String == "alice")
        // The backend's error object, and a method it does not know (404, not retried): error acks.
        try c.sendText(#"426["fail"]"#)
        let failed = try Self.arguments(try Self.packet(c, "answer"), prefix: "436")
        #expect((failed.first as? [String: Any])?["error"] as? String == "backend_error", "\(failed)")
        // Binary events are not forwarded (the backend speaks JSON).
        try c.sendText(#"451-7["echo",{"_placeholder":true,"num":0}]"#)
        try c.send(.binary, [1, 2, 3])
        let binary = try Self.arguments(try Self.packet(c, "answer"), prefix: "437")
        #expect((binary.first as? [String: Any])?["error"] as? String == "bad_request", "\(binary)")

        // --proxy-publish: the backend refuses, and the socket sees its reason; an allowed publish gets its offset.
        try c.sendText(#"428["join","lobby"]"#)
        _ = try Self.arguments(try Self.packet(c, "answer"), prefix: "438")
        try c.sendText(#"429["publish","lobby",{"text":"bad"}]"#)
        let refused = try #require(try Self.arguments(try Self.packet(c, "answer"), prefix: "439").first as? [String: Any])
        #expect(refused["error"] as? String == "refused" && refused["message"] as? String == "no bad words here", "\(refused)")
        try c.sendText(#"4210["publish","lobby",{"text":"fine"}]"#)
        var sawMessage = false
        var sawAck = false
        for _ in 0..<2 {
            let packet = try Self.packet(c, "answer")
            if packet.hasPrefix("4310") { sawAck = (try Self.arguments(packet, prefix: "4310").first as? [String: Any])?["offset"] != nil }
            if packet.hasPrefix(#"42["message","lobby",{"text":"fine"}"#) { sawMessage = true }
        }
        #expect(sawAck && sawMessage)

        // The server API's subscribe makes the socket a member: the room's messages arrive as `message` events.
        let (status, answer) = try APITest.call(gw.adminPort, "subscribe", #"{"user":"alice","room":"side"}"#)
        #expect(status == 200 && answer["affected"] as? Int == 1, "\(answer)")
        _ = try APITest.call(gw.adminPort, "publish", #"{"room":"side","data":41}"#)
        let message = try Self.arguments(try Self.packet(c, "answer"), prefix: "42")
        #expect(message.count == 4 && message[0] as? String == "message" && message[1] as? String == "side" && message[2] as? Int == 41)
        #expect(message.last is String, "the offset is the last argument")
        // Unsubscribe: no more of the room's messages (a later `lobby` message proves the socket still reads).
        let (_, left) = try APITest.call(gw.adminPort, "unsubscribe", #"{"user":"alice","room":"side"}"#)
        #expect(left["affected"] as? Int == 1, "\(left)")
        _ = try APITest.call(gw.adminPort, "publish", #"{"room":"side","data":42}"#)
        _ = try APITest.call(gw.adminPort, "publish", #"{"room":"lobby","data":43}"#)
        let after = try Self.packet(c, "answer")
        #expect(after.hasPrefix(#"42["message","lobby",43"#), "\(after)")
    }
}
