import Foundation
import Testing

/// `--proxy-connect-events` reports room-protocol connections only, and each of them as one `connect` and
/// one `disconnect` (docs/api.md): a Socket.IO session or an echo connection used to send the backend a
/// `disconnect` it had never seen connect (two for a Socket.IO client that upgraded from polling).
@Suite(.serialized) struct ProxyConnectEventsTests {
    /// Every event the backend received, as (event, connection id).
    static func events(_ backend: FakeAuthBackend) -> [(event: String, connection: String)] {
        backend.requests.flatMap { request -> [(event: String, connection: String)] in
            guard let o = (try? JSONSerialization.jsonObject(with: Data(request.body.utf8))) as? [String: Any],
                o["type"] as? String == "events", let list = o["events"] as? [[String: Any]]
            else { return [] }
            return list.compactMap { e in
                guard let event = e["event"] as? String, let connection = e["connection"] as? String else { return nil }
                return (event, connection)
            }
        }
    }

    @Test func onlyRoomConnectionsAreReportedAndEachDisconnectHasItsConnect() throws {
        let backend = try APIProxyTests.backend()
        let gw = try SocketIOGatewayTests.gateway(
            ["--proxy-url", backend.url, "--proxy-connect-events", "yes", "--echo-path", "/echo"]
                + APIProxyTests.proxyFlags)
        let normalClose: [UInt8] = [0x03, 0xE8]
        do {
            let (sio, _) = try SocketIOGatewayTests.rawSession(gw)
            let echo = try WSClient(port: gw.port, path: "/echo", expectHello: false)
            try echo.sendText("x")
            _ = try echo.next(timeout: 3)
            let room = try APITest.client(gw.port, user: "alice")
            _ = try room.join("lobby")
            for c in [sio, echo, room] { try c.send(.close, normalClose) }
            for c in [sio, echo, room] { _ = try? c.expectClose(timeout: 3) }
        }
        // The room connection's disconnect is the last event to come; batches leave every 500 ms.
        try APITest.waitUntil(5, "the room connection's disconnect") { Self.events(backend).contains { $0.event == "disconnect" } }
        usleep(700_000)  // one more batch interval: a stray Socket.IO or echo disconnect would have left by now
        let events = Self.events(backend)
        #expect(events.filter { $0.event == "connect" }.count == 1, "\(events)")
        #expect(events.filter { $0.event == "disconnect" }.count == 1, "\(events)")
        let connected = Set(events.filter { $0.event == "connect" }.map(\.connection))
        #expect(events.allSatisfy { connected.contains($0.connection) }, "a disconnect without its connect: \(events)")
    }
}
