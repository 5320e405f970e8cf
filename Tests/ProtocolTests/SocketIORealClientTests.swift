import Testing

@testable import Protocol

/// The exact bytes python-socketio 5.7.2 / python-engineio 4.3.4 (Debian 12 `python3-socketio`) sent
/// to a recording server (scripts/socketio-capture): connect with `auth={"token":"good"}` to `/` and
/// `/chat`, `emit("echo","a",callback)`, `emit("echo",{"x":1},namespace="/chat",callback)`,
/// `emit("echo","noack")`, `emit("upload",b"\x01\x02\x03",callback)`, the answer to the server's
/// `42/chat,12["ask"]`, then `disconnect()`.
@Suite struct SocketIORealClientTests {
    private let token = JSONFragment(#"{"token":"good"}"#)

    private func connected(_ transport: EngineIOTransport) -> SocketIOSession {
        var session = SocketIOSession(sid: "eio1", transport: transport, configuration: SocketIOSessionConfiguration(namespaces: ["/", "/chat"]))
        _ = session.start(now: 0)
        return session
    }

    private func acceptAll(_ session: inout SocketIOSession, _ actions: [SocketIOAction]) {
        for case .authenticate(let ns, _, _) in actions {
            _ = session.connectResult(namespace: ns, .accepted(socketID: "sock" + ns, pid: nil))
        }
    }

    private var expectedEvents: [SocketIOAction] {
        [
            .forward(namespace: "/", event: "echo", arguments: [JSONFragment(#""a""#)], attachments: [], ackID: 1),
            .forward(namespace: "/chat", event: "echo", arguments: [JSONFragment(#"{"x":1}"#)], attachments: [], ackID: 1),
            .forward(namespace: "/", event: "echo", arguments: [JSONFragment(#""noack""#)], attachments: [], ackID: nil),
            .forward(namespace: "/", event: "upload", arguments: [JSONFragment(#"{"_placeholder":true,"num":0}"#)], attachments: [[1, 2, 3]], ackID: 2)
        ]
    }

    @Test func webSocketTransport() {
        var session = connected(.websocket)
        var auth: [SocketIOAction] = []
        for frame in [#"40{"token":"good"}"#, #"40/chat,{"token":"good"}"#] { auth += session.receive(text: Array(frame.utf8), now: 0) }
        #expect(auth == [.authenticate(namespace: "/", auth: token, recovery: nil), .authenticate(namespace: "/chat", auth: token, recovery: nil)])
        acceptAll(&session, auth)
        let ask = session.emit(namespace: "/chat", event: "ask", arguments: [], expectingAck: true)
        var events: [SocketIOAction] = []
        for frame in [#"421["echo","a"]"#, #"42/chat,1["echo",{"x":1}]"#, #"42["echo","noack"]"#, #"451-2["upload",{"_placeholder":true,"num":0}]"#] {
            events += session.receive(text: Array(frame.utf8), now: 0)
        }
        events += session.receive(binaryFrame: [1, 2, 3], now: 0)
        #expect(events == expectedEvents)
        #expect(ask.ackID == 0)
        #expect(
            session.receive(text: Array(#"43/chat,0["yes"]"#.utf8), now: 0) == [
                .ackReceived(namespace: "/chat", id: 0, arguments: [JSONFragment(#""yes""#)], attachments: [])
            ])
        #expect(!session.isClosed)
    }

    @Test func pollingTransport() {
        var session = connected(.polling)
        let auth = session.receive(pollingBody: Array("40{\"token\":\"good\"}\u{1e}40/chat,{\"token\":\"good\"}".utf8), now: 0)
        #expect(auth == [.authenticate(namespace: "/", auth: token, recovery: nil), .authenticate(namespace: "/chat", auth: token, recovery: nil)])
        acceptAll(&session, auth)
        for _ in 0..<12 { _ = session.emit(namespace: "/", event: "tick", arguments: [], expectingAck: true) }
        #expect(session.emit(namespace: "/chat", event: "ask", arguments: [], expectingAck: true).ackID == 12)
        let body =
            "421[\"echo\",\"a\"]\u{1e}42/chat,1[\"echo\",{\"x\":1}]\u{1e}42[\"echo\",\"noack\"]\u{1e}451-2[\"upload\",{\"_placeholder\":true,\"num\":0}]\u{1e}bAQID\u{1e}43/chat,12[\"yes\"]"
        let events = session.receive(pollingBody: Array(body.utf8), now: 0)
        #expect(events == expectedEvents + [.ackReceived(namespace: "/chat", id: 12, arguments: [JSONFragment(#""yes""#)], attachments: [])])
        let bye = session.receive(pollingBody: Array("41\u{1e}41/chat,\u{1e}1".utf8), now: 0)
        #expect(bye == [.namespaceClosed(namespace: "/"), .namespaceClosed(namespace: "/chat"), .close(.clientClosed)])
    }
}
