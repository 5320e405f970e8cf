import Testing

@testable import Protocol

/// Drives a ``SocketIOSession`` with WebSocket text frames and a fake clock, as C35/C36 do on the wire.
private struct Harness {
    var session: SocketIOSession
    var now = 0

    init(
        transport: EngineIOTransport = .websocket,
        configuration: SocketIOSessionConfiguration = SocketIOSessionConfiguration(namespaces: ["/", "/chat"], pingInterval: 300, pingTimeout: 200)
    ) {
        session = SocketIOSession(sid: "eio-sid", transport: transport, configuration: configuration)
    }

    /// The text frames (or `close:`/other action descriptions) produced by `actions`.
    static func describe(_ actions: [SocketIOAction]) -> [String] {
        actions.map { action in
            switch action {
            case .send(let packet):
                let frame = packet.webSocketFrame
                return frame.isBinary ? "binary\(frame.payload)" : String(decoding: frame.payload, as: UTF8.self)
            case .sendOnProbe(let packet): return "probe:" + String(decoding: packet.webSocketFrame.payload, as: UTF8.self)
            case .close(let reason): return "close:\(reason.label)"
            default: return "\(action)"
            }
        }
    }

    mutating func send(_ text: String) -> [SocketIOAction] { session.receive(text: Array(text.utf8), now: now) }

    mutating func sendFrames(_ text: String) -> [String] { Self.describe(send(text)) }

    /// Connects `namespace` with auth accepted as socket id `socketID`.
    mutating func connect(_ namespace: String = "/", socketID: String = "sock") {
        let frame = namespace == "/" ? "40" : "40\(namespace),"
        let actions = send(frame)
        precondition(actions.count == 1)
        _ = session.connectResult(namespace: namespace, .accepted(socketID: socketID, pid: nil))
    }
}

@Suite struct SocketIOSessionTests {
    // C35 step 1.
    @Test func openPacket() {
        var ws = SocketIOSession(
            sid: "abc", transport: .websocket, configuration: SocketIOSessionConfiguration(pingInterval: 300, pingTimeout: 200, maxPayload: 1000))
        #expect(Harness.describe(ws.start(now: 0)) == [#"0{"sid":"abc","upgrades":[],"pingInterval":300,"pingTimeout":200,"maxPayload":1000}"#])
        var polling = SocketIOSession(sid: "abc", transport: .polling)
        #expect(
            Harness.describe(polling.start(now: 0)) == [
                #"0{"sid":"abc","upgrades":["websocket"],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}"#
            ])
    }

    // C35 steps 2-6.
    @Test func connectWithAuthAndNamespaceErrors() {
        var h = Harness()
        _ = h.session.start(now: 0)
        let auth = h.send(#"40{"token":"good"}"#)
        #expect(auth == [.authenticate(namespace: "/", auth: JSONFragment(#"{"token":"good"}"#), recovery: nil)])
        #expect(Harness.describe(h.session.connectResult(namespace: "/", .accepted(socketID: "s-root", pid: nil))) == [#"40{"sid":"s-root"}"#])
        #expect(h.send(#"40/chat,{"token":"good"}"#) == [.authenticate(namespace: "/chat", auth: JSONFragment(#"{"token":"good"}"#), recovery: nil)])
        #expect(Harness.describe(h.session.connectResult(namespace: "/chat", .accepted(socketID: "s-chat", pid: nil))) == [#"40/chat,{"sid":"s-chat"}"#])
        #expect(h.sendFrames("40/nope,{}") == [#"44/nope,{"message":"Invalid namespace"}"#])
        #expect(h.session.connectedNamespaces == ["/", "/chat"])
        // Both namespaces still work, and pings are still answered.
        #expect(h.send(#"42["ev"]"#) == [.forward(namespace: "/", event: "ev", arguments: [], attachments: [], ackID: nil)])
        #expect(h.send(#"42/chat,["ev"]"#) == [.forward(namespace: "/chat", event: "ev", arguments: [], attachments: [], ackID: nil)])
        h.now = 300
        #expect(h.sendFrames("3") == [])  // an unsolicited pong changes nothing
        #expect(Harness.describe(h.session.tick(now: 300)) == ["2"])
        #expect(h.send("3").isEmpty)
        #expect(h.session.isClosed == false)

        // Step 5: `40{}` and `40` both connect to "/".
        for frame in ["40{}", "40"] {
            var other = Harness()
            #expect(other.send(frame) == [.authenticate(namespace: "/", auth: frame == "40" ? nil : JSONFragment("{}"), recovery: nil)])
        }

        // Step 6: a refused token.
        var bad = Harness()
        #expect(bad.send(#"40/chat,{"token":"bad"}"#).count == 1)
        #expect(
            Harness.describe(bad.session.connectResult(namespace: "/chat", .rejected(message: "invalid token", data: nil))) == [
                #"44/chat,{"message":"invalid token"}"#
            ])
        #expect(bad.session.connectedNamespaces.isEmpty)
        #expect(bad.send(#"42/chat,1["echo"]"#).isEmpty)  // not connected: ignored
        #expect(bad.session.counters.unconnectedNamespacePackets == 1)
    }

    // C35 step 7.
    @Test func clientSentConnectErrorAndUnknownTypeClose() {
        var h = Harness()
        #expect(h.send(#"44{"message":"x"}"#) == [.close(.socketIOError(.serverOnlyPacket))])
        #expect(h.session.isClosed)
        #expect(h.send(#"40"#).isEmpty)  // closed: nothing more
        var other = Harness()
        #expect(other.send("49") == [.close(.socketIOError(.unknownPacketType(UInt8(ascii: "9"))))])
        var eio = Harness()
        #expect(eio.send("9") == [.close(.engineIOError(.unknownPacketType(UInt8(ascii: "9"))))])
    }

    // C36 steps 1-5: the gateway answers with `answer`, which keeps the namespace.
    @Test func clientEventsWithAcks() {
        var h = Harness()
        h.connect("/")
        h.connect("/chat")
        let cases: [(String, String, String?)] = [
            (#"421["echo","a"]"#, "/", #"431["a"]"#),
            (#"420["echo","zero"]"#, "/", #"430["zero"]"#),
            (#"42/chat,7["echo","c"]"#, "/chat", #"43/chat,7["c"]"#),
            (#"42["echo","noack"]"#, "/", nil),
            (#"425["echo","a","extra",{"x":1}]"#, "/", #"435["a","extra",{"x":1}]"#)
        ]
        for (frame, namespace, expected) in cases {
            let actions = h.send(frame)
            guard case .forward(let ns, "echo", let args, [], let ackID)? = actions.first, actions.count == 1 else {
                Issue.record("\(frame): \(actions)")
                continue
            }
            #expect(ns == namespace)
            let answer = ackID.map { h.session.answer(namespace: ns, ackID: $0, arguments: args) } ?? []
            #expect(Harness.describe(answer) == (expected.map { [$0] } ?? []))
        }
    }

    // C36 step 6.
    @Test func serverEmittedEventAckOnceThenDuplicatesAndUnknownIgnored() {
        var h = Harness()
        h.connect("/")
        h.connect("/chat")
        for _ in 0..<12 { _ = h.session.emit(namespace: "/", event: "tick", arguments: [], expectingAck: true) }  // ids 0...11 on "/"
        let (id, actions) = h.session.emit(namespace: "/chat", event: "ask", arguments: [], expectingAck: true)
        #expect(id == 12)
        #expect(Harness.describe(actions) == [#"42/chat,12["ask"]"#])
        #expect(h.send(#"43/chat,12["yes"]"#) == [.ackReceived(namespace: "/chat", id: 12, arguments: [JSONFragment(#""yes""#)], attachments: [])])
        #expect(h.send(#"43/chat,12["again"]"#).isEmpty)
        #expect(h.send(#"43/chat,999["x"]"#).isEmpty)
        #expect(h.send(#"433["wrong namespace"]"#) == [.ackReceived(namespace: "/", id: 3, arguments: [JSONFragment(#""wrong namespace""#)], attachments: [])])
        #expect(h.send(#"43/chat,3["x"]"#).isEmpty)  // id 3 belonged to "/", and is gone
        #expect(h.session.counters.ignoredAcks == 3)
        #expect(!h.session.isClosed)
    }

    // C36 step 7: decided: ignored and counted, no ack, the connection stays up.
    @Test func eventForANamespaceNeverJoined() {
        var h = Harness()
        h.connect("/")
        #expect(h.send(#"42/other,3["echo","x"]"#).isEmpty)
        #expect(h.send(#"43/other,3["x"]"#).isEmpty)
        #expect(h.session.counters.unconnectedNamespacePackets == 2)
        #expect(!h.session.isClosed)
        #expect(h.send(#"42["ev"]"#).count == 1)
    }

    @Test func heartbeatReapsASilentClient() {
        var h = Harness()
        _ = h.session.start(now: 1000)
        #expect(h.session.nextDeadline == 1300)
        #expect(h.session.tick(now: 1299).isEmpty)
        #expect(h.session.tick(now: 1300) == [.send(.ping([]))])
        #expect(h.session.nextDeadline == 1500)
        #expect(h.session.tick(now: 1499).isEmpty)
        #expect(h.session.tick(now: 1500) == [.close(.pingTimeout)])
        #expect(h.session.nextDeadline == nil)
        #expect(h.session.tick(now: 9999).isEmpty)
    }

    @Test func heartbeatKeepsAnAnsweringClient() {
        var h = Harness()
        _ = h.session.start(now: 0)
        for round in 0..<5 {
            let pingAt = 300 + round * 450
            #expect(h.session.tick(now: pingAt) == [.send(.ping([]))])
            h.now = pingAt + 150
            #expect(h.send("3").isEmpty)
            #expect(h.session.nextDeadline == pingAt + 450)
        }
        #expect(!h.session.isClosed)
    }

    @Test func closeAndUnexpectedEngineIOPackets() {
        var closing = Harness()
        #expect(closing.send("1") == [.close(.clientClosed)])
        var open = Harness()
        #expect(open.send("0{}") == [.close(.unexpectedPacket("open packet from a client"))])
        var upgrade = Harness()
        #expect(upgrade.send("5") == [.close(.unexpectedPacket("upgrade packet on the active transport"))])
        var ping = Harness()
        #expect(ping.send("2") == [.send(.pong([]))])
        #expect(ping.send("2x\u{1e}9") == [.send(.pong([]))])  // found by the fuzzer: echoed data broke a polling answer
        #expect(ping.send("6").isEmpty)
        var server = Harness()
        #expect(server.session.close() == [.close(.serverClosed)])
        #expect(server.session.close().isEmpty)
    }

    @Test func pollingUpgradeToWebSocket() {
        var h = Harness(transport: .polling)
        _ = h.session.start(now: 0)
        #expect(h.session.receiveOnProbe(.ping(Array("probe".utf8)), now: 0) == [.sendOnProbe(.pong(Array("probe".utf8))), .send(.noop)])
        #expect(h.session.transport == .polling)
        #expect(h.session.receiveOnProbe(.upgrade, now: 0) == [.upgraded])
        #expect(h.session.transport == .websocket)
        #expect(h.session.receiveOnProbe(.ping(Array("probe".utf8)), now: 0) == [.close(.unexpectedPacket("upgrade probe on a WebSocket session"))])

        var early = Harness(transport: .polling)
        #expect(early.session.receiveOnProbe(.upgrade, now: 0) == [.close(.unexpectedPacket("expected 2probe then 5 on the upgrading WebSocket"))])
    }

    @Test func pollingBodyAppliedAllOrNothing() {
        var h = Harness(transport: .polling)
        h.connect("/")
        let good = h.session.receive(pollingBody: Array("42[\"a\"]\u{1e}42[\"b\"]\u{1e}3".utf8), now: 0)
        #expect(
            good == [
                .forward(namespace: "/", event: "a", arguments: [], attachments: [], ackID: nil),
                .forward(namespace: "/", event: "b", arguments: [], attachments: [], ackID: nil)
            ])
        let bad = h.session.receive(pollingBody: Array("42[\"c\"]\u{1e}9\u{1e}42[\"d\"]".utf8), now: 0)
        #expect(bad == [.close(.engineIOError(.inPayload(index: 1, .unknownPacketType(UInt8(ascii: "9")))))])
        // A bad Socket.IO packet inside a well-formed body stops at that packet.
        var s = Harness(transport: .polling)
        s.connect("/")
        let mixed = s.session.receive(pollingBody: Array("42[\"c\"]\u{1e}44{}\u{1e}42[\"d\"]".utf8), now: 0)
        #expect(mixed == [.forward(namespace: "/", event: "c", arguments: [], attachments: [], ackID: nil), .close(.socketIOError(.serverOnlyPacket))])
        // Binary attachments arrive base64-encoded in polling.
        var b = Harness(transport: .polling)
        b.connect("/")
        let binary = b.session.receive(pollingBody: Array("451-[\"up\",{\"_placeholder\":true,\"num\":0}]\u{1e}bAQID".utf8), now: 0)
        #expect(
            binary == [
                .forward(namespace: "/", event: "up", arguments: [JSONFragment(#"{"_placeholder":true,"num":0}"#)], attachments: [[1, 2, 3]], ackID: nil)
            ])
    }

    @Test func oversizePayloads() {
        var h = Harness(configuration: SocketIOSessionConfiguration(maxPayload: 16))
        #expect(h.session.receive(binaryFrame: [UInt8](repeating: 0, count: 17), now: 0) == [.close(.engineIOError(.payloadTooLarge(limit: 16)))])
        var t = Harness(configuration: SocketIOSessionConfiguration(maxPayload: 16))
        #expect(t.send(#"42["0123456789abc"]"#) == [.close(.engineIOError(.payloadTooLarge(limit: 16)))])
        var p = Harness(transport: .polling, configuration: SocketIOSessionConfiguration(maxPayload: 16))
        #expect(p.session.receive(pollingBody: Array("6\u{1e}6\u{1e}6\u{1e}6\u{1e}6\u{1e}6\u{1e}".utf8) + [0x36], now: 0) == [])
        #expect(
            p.session.receive(pollingBody: Array(String(repeating: "6\u{1e}", count: 9).utf8), now: 0) == [.close(.engineIOError(.payloadTooLarge(limit: 16)))])
    }

    @Test func binaryEventsOverWebSocket() {
        var h = Harness()
        h.connect("/")
        #expect(h.send(#"451-3["upload",{"_placeholder":true,"num":0}]"#).isEmpty)
        #expect(
            h.session.receive(binaryFrame: [9, 9], now: 0) == [
                .forward(namespace: "/", event: "upload", arguments: [JSONFragment(#"{"_placeholder":true,"num":0}"#)], attachments: [[9, 9]], ackID: 3)
            ])
        #expect(h.session.receive(binaryFrame: [1], now: 0) == [.close(.socketIOError(.unexpectedAttachment))])
        var m = Harness()
        m.connect("/")
        _ = m.send(#"452-["upload",[{"_placeholder":true,"num":1}],{"b":{"_placeholder":true,"num":0}}]"#)
        _ = m.session.receive(binaryFrame: [1], now: 0)
        #expect(m.send(#"42["x"]"#) == [.close(.socketIOError(.expectedAttachment(remaining: 1)))])
    }

    @Test func base64BinaryTextFrameOnAWebSocket() {
        var h = Harness()
        h.connect("/")
        #expect(h.send(#"451-["up",{"_placeholder":true,"num":0}]"#).isEmpty)
        #expect(
            h.send("bAQID") == [
                .forward(namespace: "/", event: "up", arguments: [JSONFragment(#"{"_placeholder":true,"num":0}"#)], attachments: [[1, 2, 3]], ackID: nil)
            ])
        #expect(h.send("b%%") == [.close(.engineIOError(.invalidBase64))])
    }

    @Test func roomOpsBecomeTypedActions() {
        var h = Harness()
        h.connect("/")
        #expect(h.send(#"421["join","lobby"]"#) == [.join(namespace: "/", room: "lobby", since: nil, ackID: 1)])
        #expect(h.send(#"42["join","lobby","9f3a61c2:0-41"]"#) == [.join(namespace: "/", room: "lobby", since: "9f3a61c2:0-41", ackID: nil)])
        #expect(h.send(#"42["join","lobby",null]"#) == [.join(namespace: "/", room: "lobby", since: nil, ackID: nil)])
        #expect(h.send(#"422["leave","lobby"]"#) == [.leave(namespace: "/", room: "lobby", ackID: 2)])
        #expect(h.send(#"423["publish","lobby",{"text":"hi"}]"#) == [.publish(namespace: "/", room: "lobby", data: JSONFragment(#"{"text":"hi"}"#), ackID: 3)])
        #expect(h.send(#"42["chat","x"]"#) == [.forward(namespace: "/", event: "chat", arguments: [JSONFragment(#""x""#)], attachments: [], ackID: nil)])
    }

    @Test func badRoomOpsGetAnErrorAck() {
        var h = Harness()
        h.connect("/")
        #expect(h.sendFrames(#"424["join"]"#) == [#"434[{"error":"bad_request","message":"the first argument of 'join' must be the room name"}]"#])
        #expect(
            h.sendFrames(#"425["join","bad room"]"#) == [
                #"435[{"error":"invalid_room","message":"room must be 1-200 printable ASCII characters without space, quote or backslash"}]"#
            ])
        #expect(h.sendFrames(#"426["join","r",5]"#).first?.hasPrefix(#"436[{"error":"bad_request""#) == true)
        #expect(h.sendFrames(#"427["publish","r"]"#) == [#"437[{"error":"bad_request","message":"'publish' needs the room and the data"}]"#])
        #expect(h.sendFrames(#"42["leave",{}]"#) == [])  // no id: nothing to answer
        _ = h.send(#"451-18["publish","r",{"_placeholder":true,"num":0}]"#)
        #expect(
            Harness.describe(h.session.receive(binaryFrame: [1], now: 0)) == [
                #"4318[{"error":"bad_request","message":"room ops carry JSON only; binary attachments are not supported"}]"#
            ])
        #expect(h.session.counters.rejectedRoomOps == 6)
    }

    @Test func configurableRoomEventNames() {
        var h = Harness(
            configuration: SocketIOSessionConfiguration(joinEvent: "subscribe", leaveEvent: "unsubscribe", publishEvent: "send", messageEvent: "msg"))
        h.connect("/")
        #expect(h.send(#"42["subscribe","a"]"#) == [.join(namespace: "/", room: "a", since: nil, ackID: nil)])
        #expect(h.send(#"42["unsubscribe","a"]"#) == [.leave(namespace: "/", room: "a", ackID: nil)])
        #expect(h.send(#"42["send","a",1]"#) == [.publish(namespace: "/", room: "a", data: JSONFragment("1"), ackID: nil)])
        #expect(h.send(#"42["join","a"]"#) == [.forward(namespace: "/", event: "join", arguments: [JSONFragment(#""a""#)], attachments: [], ackID: nil)])
        #expect(
            Harness.describe(h.session.roomMessage(namespace: "/", room: "a", data: JSONFragment(#"{"t":1}"#), offset: "e:1-2")) == [
                #"42["msg","a",{"t":1},"e:1-2"]"#
            ])
    }

    @Test func connectionStateRecovery() {
        var h = Harness()
        let payload = #"{"pid":"p-123","offset":"9f3a61c2:0-42","token":"good"}"#
        #expect(
            h.send("40" + payload) == [
                .authenticate(namespace: "/", auth: JSONFragment(payload), recovery: SocketIORecovery(pid: "p-123", offset: "9f3a61c2:0-42"))
            ])
        #expect(Harness.describe(h.session.connectResult(namespace: "/", .accepted(socketID: "s", pid: "p-456"))) == [#"40{"sid":"s","pid":"p-456"}"#])
        #expect(SocketIOSession.recovery(in: JSONFragment(#"{"pid":"p"}"#)) == SocketIORecovery(pid: "p", offset: nil))
        #expect(SocketIOSession.recovery(in: JSONFragment(#"{"pid":5,"offset":"x"}"#)) == nil)
        #expect(SocketIOSession.recovery(in: JSONFragment(#"{"token":"t"}"#)) == nil)
        #expect(SocketIOSession.recovery(in: nil) == nil)
    }

    @Test func namespaceLifecycle() {
        var h = Harness()
        h.connect("/")
        h.connect("/chat")
        _ = h.session.emit(namespace: "/chat", event: "ask", arguments: [], expectingAck: true)
        #expect(h.send("40/chat,").isEmpty)  // duplicate connect
        #expect(h.session.counters.duplicateConnects == 1)
        #expect(h.send("41/chat,") == [.namespaceClosed(namespace: "/chat")])
        #expect(h.send("41/chat,").isEmpty)
        #expect(h.session.emit(namespace: "/chat", event: "x", arguments: []).actions.isEmpty)
        // A result for a namespace the client gave up on is dropped.
        #expect(h.send("40/chat,").count == 1)
        #expect(h.send("41/chat,").isEmpty)
        #expect(h.session.connectResult(namespace: "/chat", .accepted(socketID: "s", pid: nil)).isEmpty)
        // Server-side disconnect.
        #expect(Harness.describe(h.session.disconnect(namespace: "/")) == ["41"])
        #expect(h.session.answer(namespace: "/", ackID: 1, arguments: []).isEmpty)
    }

    @Test func leavingTheLastNamespaceEndsTheSession() {
        var h = Harness()
        h.connect("/")
        h.connect("/chat")
        #expect(h.send("41") == [.namespaceClosed(namespace: "/")])
        #expect(h.send("41/chat,") == [.namespaceClosed(namespace: "/chat"), .close(.clientClosed)])
        #expect(h.session.isClosed)
        // Not while another CONNECT is still being authenticated.
        var p = Harness()
        p.connect("/")
        #expect(p.send("40/chat,").count == 1)
        #expect(p.send("41") == [.namespaceClosed(namespace: "/")])
        #expect(!p.session.isClosed)
    }

    @Test func connectTimeout() {
        var idle = Harness(configuration: SocketIOSessionConfiguration(pingInterval: 300, pingTimeout: 200, connectTimeout: 1000))
        _ = idle.session.start(now: 0)
        #expect(idle.session.tick(now: 300) == [.send(.ping([]))])
        idle.now = 310
        #expect(idle.send("3").isEmpty)
        #expect(idle.session.nextDeadline == 610)
        #expect(idle.session.tick(now: 610) == [.send(.ping([]))])
        idle.now = 620
        #expect(idle.send("3").isEmpty)
        #expect(idle.session.nextDeadline == 920)
        #expect(idle.session.tick(now: 920) == [.send(.ping([]))])
        idle.now = 950
        #expect(idle.send("3").isEmpty)
        #expect(idle.session.nextDeadline == 1000)  // the connect deadline comes before the next ping (1250)
        #expect(idle.session.tick(now: 1000) == [.close(.connectTimeout)])

        var busy = Harness(configuration: SocketIOSessionConfiguration(pingInterval: 300, pingTimeout: 200, connectTimeout: 1000))
        _ = busy.session.start(now: 0)
        busy.connect("/")
        #expect(busy.session.nextDeadline == 300)
        // A refused CONNECT does not stop the clock.
        var refused = Harness(configuration: SocketIOSessionConfiguration(pingInterval: 5000, pingTimeout: 200, connectTimeout: 1000))
        _ = refused.session.start(now: 0)
        _ = refused.send("40")
        _ = refused.session.connectResult(namespace: "/", .rejected(message: "no", data: nil))
        #expect(refused.session.tick(now: 1000) == [.close(.connectTimeout)])
    }

    @Test func emitBinaryAndPendingAckLimit() {
        var h = Harness(configuration: SocketIOSessionConfiguration(maxPendingAcks: 2))
        h.connect("/")
        let (id, actions) = h.session.emit(
            namespace: "/", event: "file", arguments: [JSONFragment(#"{"_placeholder":true,"num":0}"#)], attachments: [[1, 2]], expectingAck: true)
        #expect(id == 0)
        #expect(Harness.describe(actions) == [#"451-0["file",{"_placeholder":true,"num":0}]"#, "binary[1, 2]"])
        #expect(h.session.emit(namespace: "/", event: "a", arguments: [], expectingAck: true).ackID == 1)
        #expect(h.session.emit(namespace: "/", event: "a", arguments: [], expectingAck: true) == (nil, []))
        #expect(h.session.emit(namespace: "/", event: "a", arguments: []).actions.count == 1)  // no ack wanted: still sent
        _ = h.send("431[]")
        #expect(h.session.emit(namespace: "/", event: "a", arguments: [], expectingAck: true).ackID == 2)
    }
}

@Suite struct SocketIOWireTests {
    /// Byte strings from the Socket.IO v5 protocol's own test suite (socketio/socket.io-protocol, test-suite/test-suite.js).
    @Test func referenceTestSuiteVectors() {
        var h = Harness(configuration: SocketIOSessionConfiguration(namespaces: ["/", "/custom"]))
        _ = h.session.start(now: 0)
        #expect(h.sendFrames("40/random") == [#"44/random,{"message":"Invalid namespace"}"#])
        h.connect("/")
        h.connect("/custom")
        #expect(h.send("41/custom") == [.namespaceClosed(namespace: "/custom")])
        #expect(h.send(#"42["message","message to main namespace"]"#).count == 1)
        let plain = h.send(#"42["message",1,"2",{"3":[true]}]"#)
        #expect(
            plain == [
                .forward(
                    namespace: "/", event: "message", arguments: [JSONFragment("1"), JSONFragment(#""2""#), JSONFragment(#"{"3":[true]}"#)], attachments: [],
                    ackID: nil)
            ])
        guard case .forward(_, _, let args, _, let id?)? = h.send(#"42456["message-with-ack",1,"2",{"3":[false]}]"#).first else {
            Issue.record("no forward"); return
        }
        #expect(Harness.describe(h.session.answer(namespace: "/", ackID: id, arguments: args)) == [#"43456[1,"2",{"3":[false]}]"#])
        #expect(h.send(#"452-789["message-with-ack",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]"#).isEmpty)
        #expect(h.session.receive(binaryFrame: [1, 2, 3], now: 0).isEmpty)
        let binary = h.session.receive(binaryFrame: [4, 5, 6], now: 0)
        guard case .forward(_, _, let bargs, let attachments, let bid?)? = binary.first else { Issue.record("\(binary)"); return }
        #expect(attachments == [[1, 2, 3], [4, 5, 6]])
        #expect(
            Harness.describe(h.session.answer(namespace: "/", ackID: bid, arguments: bargs, attachments: attachments))
                == [#"462-789[{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]"#, "binary[1, 2, 3]", "binary[4, 5, 6]"])
        for bad in ["4abc", "42{}", #"42abc["message-with-ack",1,"2",{"3":[false]}]"#] {
            var c = Harness()
            c.connect("/")
            guard case .close(.socketIOError)? = c.send(bad).last else { Issue.record("\(bad) did not close"); continue }
        }
    }

    // C35 step 2 exactly as on the wire: a masked text frame `81 92 00000000` + `40{"token":"good"}`.
    @Test func c35Step2FrameThroughTheReaderIntoTheSession() throws {
        let frame = hex("81 92 00000000 34307b22746f6b656e223a22676f6f64227d")
        for pieces in allSplits(frame) {
            let (outcome, _) = feed(pieces)
            #expect(outcome.error == nil)
            guard case .text(let text)? = outcome.events.first, outcome.events.count == 1 else {
                Issue.record("\(outcome)")
                continue
            }
            var session = SocketIOSession(sid: "e", transport: .websocket)
            _ = session.start(now: 0)
            #expect(session.receive(text: Array(text.utf8), now: 0) == [.authenticate(namespace: "/", auth: JSONFragment(#"{"token":"good"}"#), recovery: nil)])
            let answer = session.connectResult(namespace: "/", .accepted(socketID: "s1", pid: nil))
            guard case .send(let packet)? = answer.first else { Issue.record("\(answer)"); continue }
            // The server frame a gateway writes: unmasked text `40{"sid":"s1"}`.
            let payload = packet.webSocketFrame.payload
            #expect(FrameEncoder.frame(opcode: .text, payload: payload, fin: true, maskingKey: nil) == hex("81 0e") + Array(#"40{"sid":"s1"}"#.utf8))
        }
    }
}
