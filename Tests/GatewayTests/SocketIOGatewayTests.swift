import Foundation
import Gateway
import Glibc
import Protocol
import Testing

/// Issue 13 on one node: the real `switchboard` binary with `--socketio-path`, driven by Debian's
/// python-socketio client (scripts/socketio-e2e.py) and by raw Engine.IO frames over a WebSocket
/// (`WSClient`) for the heartbeat and the bad input the client library never sends.
@Suite struct SocketIOGatewayTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let target = "/socket.io/?EIO=4&transport=websocket"

    static func gateway(_ extra: [String] = []) throws -> GatewayProcess {
        try GatewayProcess(["--socketio-path", "/socket.io/", "--jwt-secret", TestKeys.shared.secret] + extra, threads: 1)
    }

    /// Runs a scenario of scripts/socketio-e2e.py and returns its JSON answer.
    static func driver(_ arguments: [String], timeout: TimeInterval = 60) throws -> [String: Any] {
        let (status, out) = try runTool([debianPython, root.appendingPathComponent("scripts/socketio-e2e.py").path] + arguments, timeout: timeout)
        let line = out.split(separator: "\n").last { $0.hasPrefix("{") }.map(String.init) ?? ""
        guard status == 0, let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], object["error"] == nil else {
            throw TestFailure("socketio-e2e.py \(arguments.first ?? "") exited \(status):\n\(out.suffix(3000))")
        }
        return object
    }

    /// A raw Engine.IO session over a WebSocket: the open packet read and checked, `/` connected.
    static func rawSession(_ gw: GatewayProcess, connect: Bool = true, token: String = TokenFactory.make()) throws -> (WSClient, [String: Any]) {
        let c = try WSClient(port: gw.port, path: target, expectHello: false)
        guard case .text(let open)? = try c.next(timeout: 3), open.hasPrefix("0"),
            let fields = try JSONSerialization.jsonObject(with: Data(open.dropFirst().utf8)) as? [String: Any]
        else {
            throw TestFailure("no open packet")
        }
        if connect {
            try c.sendText("40" + "{\"token\":\"\(token)\"}")
            guard case .text(let answer)? = try c.next(timeout: 3), answer.hasPrefix("40{\"sid\":") else { throw TestFailure("no CONNECT answer") }
        }
        return (c, fields)
    }

    /// Opens a long-polling session (its open packet checked) and, with `connect`, connects `/` by POST and
    /// collects the answer by GET; returns the session's polling path.
    static func pollingSession(_ gw: GatewayProcess, connect: Bool = true) throws -> String {
        let (status, open) = try httpGet(port: gw.port, path: "/socket.io/?EIO=4&transport=polling")
        guard status == 200, open.hasPrefix("0{"), open.contains("\"upgrades\":[\"websocket\"]"),
            let sid = (try JSONSerialization.jsonObject(with: Data(open.dropFirst().utf8)) as? [String: Any])?["sid"] as? String
        else {
            throw TestFailure("no polling open packet: \(status) \(open)")
        }
        let path = "/socket.io/?EIO=4&transport=polling&sid=\(sid)"
        if connect {
            let (posted, ok) = try httpRequest(port: gw.port, method: "POST", path: path, body: Array("40{\"token\":\"\(TokenFactory.make())\"}".utf8))
            let (polled, answer) = try httpGet(port: gw.port, path: path)
            guard posted == 200, ok == "ok", polled == 200, answer.hasPrefix("40{\"sid\":") else { throw TestFailure("CONNECT by polling: \(ok) \(answer)") }
        }
        return path
    }

    @Test func flags() throws {
        #expect(try Config.parse(arguments: [], environment: [:]).socketIO.path == nil)
        let c = try Config.parse(
            arguments: [
                "--socketio-path", "/socket.io/", "--socketio-namespaces", "/,/chat", "--socketio-join-event", "enter",
                "--socketio-ping-interval", "10s", "--socketio-recovery-window", "0"
            ],
            environment: ["SWITCHBOARD_SOCKETIO_MESSAGE_EVENT": "msg"])
        #expect(c.socketIO.path == "/socket.io/" && c.socketIO.namespaces == ["/", "/chat"] && c.socketIO.joinEvent == "enter")
        #expect(c.socketIO.messageEvent == "msg" && c.socketIO.pingIntervalMs == 10_000 && c.socketIO.recoveryWindowMs == 0)
        for bad in [
            ["--socketio-path", "socket.io"], ["--socketio-path", "/ws"], ["--socketio-join-event", "disconnect"],
            ["--socketio-path", "/s/", "--socketio-leave-event", "join"], ["--socketio-namespaces", "chat"],
            ["--socketio-max-payload", "65MiB"], ["--socketio-ping-timeout", "0"]
        ] {
            #expect(throws: Config.Invalid.self, "\(bad)") { try Config.parse(arguments: bad, environment: [:]) }
        }
    }

    @Test func pythonClientOverWebSocket() throws {
        let gw = try Self.gateway()
        let token = TokenFactory.make()
        let bad = TokenFactory.make(key: "another-secret-0123456789-abcdefghijkl")
        let r = try Self.driver(["basic", "--url", "http://127.0.0.1:\(gw.port)", "--token", token, "--bad-token", bad])
        #expect(r["transport"] as? String == "websocket")
        let join = r["join"] as? [String: Any]
        #expect(join?["room"] as? String == "lobby")
        #expect(join?["recovered"] as? Bool == false)
        let offset = (r["publish"] as? [String: Any])?["offset"] as? String
        #expect(offset?.contains(":") == true)
        // The room message: [room, data, offset], the offset last and equal to the publish's ack.
        let message = r["message"] as? [Any]
        #expect(message?.first as? String == "lobby")
        #expect((message?[1] as? [String: Any])?["text"] as? String == "hi")
        #expect(message?.last as? String == offset)
        #expect((r["other_event"] as? [String: Any])?["error"] as? String == "unknown_op")
        #expect((r["forbidden_join"] as? [String: Any])?["error"] as? String == "forbidden")
        #expect((r["bad_join"] as? [String: Any])?["error"] as? String == "bad_request")
        #expect((r["leave"] as? [String: Any])?["room"] as? String == "lobby")
        #expect((r["leave_again"] as? [String: Any])?["error"] as? String == "not_joined")
        #expect((r["pid"] as? String)?.isEmpty == false)
        // A token signed with another key: CONNECT_ERROR with the verifier's reason; no session.
        #expect(r["bad_token"] as? String != "connected")
        let refusal = (r["bad_token_errors"] as? [[String: Any]])?.first?["message"] as? String
        #expect(refusal?.contains("signature") == true, "connect_error: \(r["bad_token_errors"] ?? "none")")
        #expect(try gw.metric("switchboard_protocol_connects_total{protocol=\"socketio\",result=\"accepted\"}") == 1)
        #expect(try gw.metric("switchboard_protocol_connects_total{protocol=\"socketio\",result=\"refused\"}") == 1)
        #expect(gw.log().contains("\"protocol\":\"socketio\""))
    }

    /// python-socketio's default (long-polling first, then the upgrade probe, then the WebSocket), and
    /// long-polling only; on two loops, so requests of one session also arrive on the other loop.
    @Test(arguments: ["polling", "polling-only"])
    func pythonClientOverPolling(transport: String) throws {
        let gw = try Self.gateway(["--threads", "2"])
        let r = try Self.driver(["basic", "--url", "http://127.0.0.1:\(gw.port)", "--token", TokenFactory.make(), "--transport", transport])
        if transport == "polling-only" { #expect(r["transport"] as? String == "polling") }
        let offset = (r["publish"] as? [String: Any])?["offset"] as? String
        #expect((r["message"] as? [Any])?.last as? String == offset && offset != nil)
        #expect((r["other_event"] as? [String: Any])?["error"] as? String == "unknown_op")
        #expect(r["bad_token"] as? String != "connected")
        let log = gw.log()
        #expect(log.contains("\"transport\":\"polling\""), "no polling session was opened")
        #expect(try gw.metric("switchboard_protocol_connects_total{protocol=\"socketio\",result=\"accepted\"}") == 1)
    }

    /// Raw long-polling: the open packet, CONNECT by POST, its answer by GET; a POST with one bad packet
    /// among several applies none of them (400 code 3, the session closes, a later poll gets code 1);
    /// a body over maxPayload is refused before it is read.
    @Test func pollingPostIsAllOrNothing() throws {
        let gw = try Self.gateway(["--socketio-max-payload", "4KiB"])
        let q = try Self.pollingSession(gw)
        let mixed = "421[\"join\",\"lobby\"]\u{1e}4abc\u{1e}422[\"join\",\"stream:x\"]"
        let (p2, bad) = try httpRequest(port: gw.port, method: "POST", path: q, body: Array(mixed.utf8))
        #expect(p2 == 400 && bad.contains("\"code\":3"))
        #expect(try gw.metric("switchboard_room_joins_total") == 0)
        let (g2, gone) = try httpGet(port: gw.port, path: q)
        #expect(g2 == 400 && gone.contains("\"code\":1"))
        #expect(try gw.metric("switchboard_protocol_sessions_closed_total{protocol=\"socketio\",reason=\"socketio_error\"}") == 1)
        // Over maxPayload: refused from the Content-Length alone.
        let (p3, big) = try httpRequest(
            port: gw.port, method: "POST", path: try Self.pollingSession(gw, connect: false),
            body: Array(repeating: UInt8(ascii: "4"), count: 5000))
        #expect(p3 == 400 && big.contains("maxPayload"))
        let (p4, unknown) = try httpRequest(
            port: gw.port, method: "POST", path: "/socket.io/?EIO=4&transport=polling&sid=00nosuchsessionxxxxxxx", body: Array("2".utf8))
        #expect(p4 == 400 && unknown.contains("\"code\":1"))
    }

    /// A polling session's first GET passes the Origin check and per-IP admission like an upgrade, and the
    /// session holds its admission ticket: a second session from the address is refused while it lives.
    @Test func pollingOpenIsAdmittedLikeAnUpgrade() throws {
        let gw = try Self.gateway(["--allowed-origins", "https://app.example", "--max-connections-per-ip", "1"])
        let open = "/socket.io/?EIO=4&transport=polling"
        #expect(try httpRequest(port: gw.port, method: "GET", path: open, headers: ["Origin": "https://evil.example"]).0 == 403)
        let (ok, body) = try httpRequest(port: gw.port, method: "GET", path: open, headers: ["Origin": "https://app.example"])
        #expect(ok == 200 && body.hasPrefix("0{"))
        #expect(try httpRequest(port: gw.port, method: "GET", path: open, headers: ["Origin": "https://app.example"]).0 == 429)
    }

    /// A client whose held GET's connection went away polls again: that poll is not a duplicate (which would
    /// close the session), and it gets the next ping.
    @Test func abandonedPollIsNotADuplicate() throws {
        let gw = try Self.gateway(["--socketio-ping-interval", "400ms", "--socketio-ping-timeout", "3s"])
        let q = try Self.pollingSession(gw)
        do {
            let held = try RawSocket(port: gw.port)
            try held.send(Array("GET \(q) HTTP/1.1\r\nHost: x\r\n\r\n".utf8))
            usleep(100_000)
        }  // closed here, unanswered
        usleep(100_000)
        let (status, body) = try httpGet(port: gw.port, path: q)
        #expect(status == 200 && body == "2", "\(status) \(body)")
    }

    /// The polling queue is bounded: a client that stops polling while its room is busy is closed as a slow
    /// consumer (its next poll gets code 1: it reconnects and recovers).
    @Test func pollingQueueIsBounded() throws {
        let gw = try Self.gateway(["--max-outbound-bytes", "2KiB", "--api-key", "k"])
        let q = try Self.pollingSession(gw)
        #expect(try httpRequest(port: gw.port, method: "POST", path: q, body: Array("421[\"join\",\"lobby\"]".utf8)).0 == 200)
        let (_, joined) = try httpGet(port: gw.port, path: q)
        #expect(joined.contains("431[{\"room\":\"lobby\""), "got \(joined)")
        for i in 0..<20 {
            let body = "{\"room\":\"lobby\",\"data\":\"\(i)-\(String(repeating: "y", count: 200))\"}"
            _ = try httpRequest(port: gw.adminPort, method: "POST", path: "/api/publish", headers: ["Authorization": "Bearer k"], body: Array(body.utf8))
        }
        var closed = false
        for _ in 0..<50 where !closed {
            closed = (try gw.metric("switchboard_slow_consumer_closes_total") ?? 0) >= 1
            if !closed { usleep(20_000) }
        }
        #expect(closed)
        let (status, body) = try httpGet(port: gw.port, path: q)
        #expect(status == 400 && body.contains("\"code\":1"))
    }

    @Test func engineIOHandshakeErrors() throws {
        let gw = try Self.gateway()
        let (v3, body3) = try httpGet(port: gw.port, path: "/socket.io/?EIO=3&transport=polling")
        #expect(v3 == 400)
        #expect(body3.contains("\"code\":5") && body3.contains("Engine.IO protocol 4 only"))
        let (none, bodyNone) = try httpGet(port: gw.port, path: "/socket.io/?transport=websocket")
        #expect(none == 400 && bodyNone.contains("\"code\":5"))
        let (tr, bodyTr) = try httpGet(port: gw.port, path: "/socket.io/?EIO=4&transport=carrier-pigeon")
        #expect(tr == 400 && bodyTr.contains("\"code\":0"))
        // A sid this node does not hold: code 1, so the client starts a new session.
        let (sid, bodySid) = try upgradeAnswer(port: gw.port, target: Self.target + "&sid=nope")
        #expect(sid == 400 && bodySid.contains("\"code\":1"))
        #expect(try gw.metric("switchboard_protocol_http_errors_total{protocol=\"socketio\",code=\"5\"}") == 2)
        // Off unless configured.
        let plain = try GatewayProcess(threads: 1)
        #expect(try upgradeAnswer(port: plain.port, target: Self.target).status == 404)
    }

    @Test func silentClientIsReapedByPingTimeout() throws {
        let gw = try Self.gateway(["--socketio-ping-interval", "200ms", "--socketio-ping-timeout", "300ms"])
        let (silent, open) = try Self.rawSession(gw)
        #expect(open["pingInterval"] as? Int == 200 && open["pingTimeout"] as? Int == 300)
        #expect(open["upgrades"] as? [String] == [] && open["maxPayload"] as? Int == 1_000_000)
        let (live, _) = try Self.rawSession(gw)
        // The live one answers each Engine.IO ping; the silent one never does.
        var pongs = 0
        let deadline = Date().addingTimeInterval(1.2)
        while Date() < deadline {
            if case .text("2")? = try live.next(timeout: 0.1) {
                try live.sendText("3")
                pongs += 1
            }
        }
        #expect(try silent.expectClose(timeout: 2) == 1001)
        #expect(pongs >= 3)
        try live.sendText("42[\"join\",\"lobby\"]")  // still served
        #expect(try gw.metric("switchboard_protocol_sessions_closed_total{protocol=\"socketio\",reason=\"ping_timeout\"}") == 1)
        #expect(try gw.metric("switchboard_protocol_sessions_open{protocol=\"socketio\"}") == 1)
    }

    /// Namespaces: an unconfigured one gets CONNECT_ERROR and the session stays; a room joined through
    /// `/chat` delivers its messages on `/chat`, with acks on `/chat` too.
    @Test func namespaces() throws {
        let gw = try Self.gateway(["--socketio-namespaces", "/,/chat"])
        let (c, _) = try Self.rawSession(gw)
        try c.sendText("40/nope,")
        guard case .text(let refused)? = try c.next(timeout: 3) else { throw TestFailure("no answer") }
        #expect(refused == "44/nope,{\"message\":\"Invalid namespace\"}")
        try c.sendText("40/chat,{\"token\":\"\(TokenFactory.make())\"}")
        guard case .text(let connected)? = try c.next(timeout: 3) else { throw TestFailure("no answer") }
        #expect(connected.hasPrefix("40/chat,{\"sid\":"))
        try c.sendText("42/chat,5[\"join\",\"lobby\"]")
        guard case .text(let joined)? = try c.next(timeout: 3) else { throw TestFailure("no join ack") }
        #expect(joined.hasPrefix("43/chat,5[{\"room\":\"lobby\""))
        try c.sendText("42/chat,6[\"publish\",\"lobby\",{\"n\":1}]")
        var texts: [String] = []
        while texts.count < 2, case .text(let t)? = try c.next(timeout: 3) { texts.append(t) }
        #expect(texts.contains { $0.hasPrefix("43/chat,6[{\"offset\":") })
        #expect(texts.contains { $0.hasPrefix("42/chat,[\"message\",\"lobby\",{\"n\":1},\"") })
    }

    /// Recovery on one node over the WebSocket: a session that lost its transport left a record; a new
    /// session presenting its `pid` and last offset gets the same `pid` back and exactly the messages
    /// published meanwhile, in order, then live ones.
    @Test func recoveryAfterATransportLoss() throws {
        let gw = try Self.gateway(["--api-key", "k"])
        func texts(_ c: WSClient, _ n: Int) throws -> [String] {
            var out: [String] = []
            while out.count < n {
                guard let e = try c.next(timeout: 3) else { throw TestFailure("got \(out)") }
                if case .text(let t) = e, t != "2" { out.append(t) }
            }
            return out
        }
        func publish(_ i: Int) throws {
            _ = try httpRequest(
                port: gw.adminPort, method: "POST", path: "/api/publish", headers: ["Authorization": "Bearer k"],
                body: Array("{\"room\":\"lobby\",\"data\":\(i)}".utf8))
        }
        let first = try WSClient(port: gw.port, path: Self.target, expectHello: false)
        _ = try texts(first, 1)  // open packet
        try first.sendText("40{\"token\":\"\(TokenFactory.make())\"}")
        let connected = try texts(first, 1)[0]
        let pid = try #require((try JSONSerialization.jsonObject(with: Data(connected.dropFirst(2).utf8)) as? [String: Any])?["pid"] as? String)
        try first.sendText("421[\"join\",\"lobby\"]")
        _ = try texts(first, 1)
        try publish(1)
        let seen = try texts(first, 1)[0]  // 42["message","lobby",1,"<offset>"]
        let lastOffset = try #require((try JSONSerialization.jsonObject(with: Data(seen.dropFirst(2).utf8)) as? [Any])?.last as? String)
        shutdown(first.socket.fd, CInt(SHUT_RDWR))  // the transport is lost: no Engine.IO close, no Socket.IO disconnect
        usleep(200_000)
        for i in 2...4 { try publish(i) }
        let second = try WSClient(port: gw.port, path: Self.target, expectHello: false)
        _ = try texts(second, 1)
        try second.sendText("40{\"token\":\"\(TokenFactory.make())\",\"pid\":\"\(pid)\",\"offset\":\"\(lastOffset)\"}")
        let answer = try texts(second, 1)[0]
        #expect(answer.contains("\"pid\":\"\(pid)\""), "\(answer)")
        let replayed = try texts(second, 3)
        #expect(replayed.map { $0.split(separator: ",")[2] } == ["2", "3", "4"], "\(replayed)")
        try publish(5)
        #expect(try texts(second, 1)[0].contains("\"lobby\",5,"))
        #expect(try gw.metric("switchboard_protocol_recoveries_total{protocol=\"socketio\",result=\"recovered\"}") == 1)
    }

    /// A session whose CONNECT token expires is closed 4003 (the client reconnects with a fresh token and
    /// recovers); one with a longer token stays.
    @Test func tokenExpiryClosesTheSession() throws {
        let gw = try Self.gateway(["--jwt-leeway", "0s"])
        let (short, _) = try Self.rawSession(gw, token: TokenFactory.make(claims: TokenFactory.claims(exp: TokenFactory.now + 1)))
        let (long, _) = try Self.rawSession(gw)
        #expect(try short.expectClose(timeout: 4) == 4003)
        try long.sendText("421[\"join\",\"lobby\"]")
        guard case .text(let ack)? = try long.next(timeout: 3) else { throw TestFailure("no ack") }
        #expect(ack.hasPrefix("431[{\"room\":\"lobby\""))
        #expect(try gw.metric("switchboard_protocol_sessions_closed_total{protocol=\"socketio\",reason=\"token_expired\"}") == 1)
    }

    /// Each input closes its session with the protocol's answer and a labelled count; the node goes on.
    @Test(arguments: [
        ("9", 1008, "engineio_error"),  // unknown Engine.IO type
        ("4abc", 1008, "socketio_error"),  // not a Socket.IO packet
        ("44{\"message\":\"x\"}", 1008, "socketio_error"),  // CONNECT_ERROR from a client
        ("4212345678901234567[\"join\",\"lobby\"]", 1008, "socketio_error"),  // ack id past 2^53 - 1
        ("451-[\"up\",{\"_placeholder\":true,\"num\":0}]|42[\"x\"]", 1008, "socketio_error"),  // attachment expected, text came
        ("452-[\"up\",{\"_placeholder\":true,\"num\":0}]", 1008, "socketio_error"),  // 2 announced, placeholders for 1
        ("OVERSIZE", 1009, "engineio_error")  // a 1,100-byte packet over maxPayload 1 KiB
    ])
    func badInputClosesTheSession(input: String, code: Int, label: String) throws {
        let gw = try Self.gateway(["--socketio-max-payload", "1KiB"])
        let (c, _) = try Self.rawSession(gw)
        let oversize = "42[\"publish\",\"lobby\",\"" + String(repeating: "x", count: 1100) + "\"]"
        let parts = input == "OVERSIZE" ? [oversize] : input.split(separator: "|").map(String.init)
        for p in parts { try c.sendText(p) }
        if input.hasPrefix("452-") { try c.send(.binary, [1, 2]); try c.send(.binary, [3]) }
        #expect(try c.expectClose(timeout: 3) == UInt16(code), "\(input.prefix(40))")
        #expect(try gw.metric("switchboard_protocol_sessions_closed_total{protocol=\"socketio\",reason=\"\(label)\"}") == 1)
        let (next, _) = try Self.rawSession(gw)
        try next.sendText("421[\"join\",\"lobby\"]")
        guard case .text(let ack)? = try next.next(timeout: 3) else { throw TestFailure("no ack after bad input") }
        #expect(ack.hasPrefix("431[{\"room\":\"lobby\""))
    }
}
