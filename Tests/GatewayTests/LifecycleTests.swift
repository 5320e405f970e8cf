import Foundation
import Glibc
import Protocol
import Testing

/// Handshake answers, close handshake, heartbeats, admin endpoints and shutdown, against the real binary.
@Suite(.serialized) struct LifecycleTests {
    @Test func aSecondNodeOnTheSamePortRefusesToStartAndNamesThePort() throws {
        let gw = try GatewayProcess(threads: 2)
        let p = Process()
        p.executableURL = GatewayProcess.binary
        p.arguments = ["--port", "\(gw.port)", "--admin-port", "\(try freePort())", "--threads", "2", "--log-level", "error"]
        let pipe = Pipe()
        p.standardError = pipe
        p.standardOutput = FileHandle.nullDevice
        try p.run()
        let err = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        #expect(p.terminationStatus == 1)
        #expect(err.contains("bind 127.0.0.1:\(gw.port): Address already in use"), "\(err)")
        // The first node still has its port to itself.
        #expect(try WSClient(port: gw.port).join("still-here").op == "joined")
    }

    @Test func httpAnswersBeforeUpgrade() throws {
        let gw = try GatewayProcess(threads: 1)
        let (s404, _) = try httpGet(port: gw.port, path: "/nope")
        #expect(s404 == 404)
        let (s426, body) = try httpGet(port: gw.port, path: "/ws")
        #expect(s426 == 426)
        #expect(!body.isEmpty)
        let (h, hbody) = try httpGet(port: gw.adminPort, path: "/health")
        #expect(h == 200 && hbody.contains("\"status\":\"ok\""))
        let (r, rbody) = try httpGet(port: gw.adminPort, path: "/ready")
        #expect(r == 200 && rbody.contains("\"bus\""))
        let (m, mbody) = try httpGet(port: gw.adminPort, path: "/metrics")
        #expect(m == 200 && mbody.contains("# TYPE switchboard_connections_open gauge"))
        // Hardening headers on every non-upgrade answer, no Server header.
        let raw = try RawSocket(port: gw.port)
        try raw.send(Array("GET /x HTTP/1.1\r\nHost: a\r\n\r\n".utf8))
        let text = String(decoding: try raw.readToEOF(timeout: 3), as: UTF8.self).lowercased()
        #expect(text.contains("x-content-type-options: nosniff"))
        #expect(text.contains("cache-control: no-store"))
        #expect(!text.contains("\r\nserver:"))
    }

    @Test func oversizedHeadGets431AndTooManyHeadersToo() throws {
        let gw = try GatewayProcess(threads: 1)
        let big = try RawSocket(port: gw.port)
        try big.send(Array(("GET /ws HTTP/1.1\r\nHost: a\r\nX-Big: " + String(repeating: "a", count: 9000) + "\r\n\r\n").utf8))
        #expect(String(decoding: try big.readToEOF(timeout: 3), as: UTF8.self).hasPrefix("HTTP/1.1 431"))
        let many = try RawSocket(port: gw.port)
        try many.send(Array(("GET /ws HTTP/1.1\r\nHost: a\r\n" + (0..<120).map { "X-H\($0): v\r\n" }.joined() + "\r\n").utf8))
        #expect(String(decoding: try many.readToEOF(timeout: 3), as: UTF8.self).hasPrefix("HTTP/1.1 431"))
    }

    @Test func pipelinedFramesAfterTheHeadAreNotLost() throws {
        let gw = try GatewayProcess(["--echo-path", "/echo"], threads: 1)
        let s = try RawSocket(port: gw.port)
        let (req, _) = WebSocketHandshake.clientRequest(host: "127.0.0.1", path: "/echo")
        let frame = FrameEncoder.frame(opcode: .text, payload: Array("pipelined".utf8), maskingKey: 0x1122_3344)
        try s.send(req + frame)
        let deadline = Date().addingTimeInterval(3)
        while Date() < deadline, !String(decoding: s.buffer, as: UTF8.self).contains("pipelined") { _ = try s.fill(timeout: 0.2) }
        #expect(String(decoding: s.buffer, as: UTF8.self).contains("pipelined"))
    }

    @Test func clientCloseIsAnsweredAndServerClosesTCP() throws {
        let gw = try GatewayProcess(threads: 1)
        let c = try WSClient(port: gw.port)
        _ = try c.join("r")
        try c.send(.close, FrameEncoder.closePayload(code: .normalClosure, reason: "bye"))
        #expect(try c.expectClose() == 1000)
        #expect(c.socket.waitForEOF(timeout: 3))
        usleep(200_000)
        #expect(try gw.metric("switchboard_connections_open") == 0)
        #expect(try gw.metric("switchboard_rooms") == 0)
        #expect(try gw.metric("switchboard_connections_closed_total{code=\"1000\"}") == 1)
    }

    @Test func silentClientIsReapedAfterPingInterval() throws {
        // ../shared/cases C21: interval 1 s, pong timeout 1 s; the client reads but never answers.
        let gw = try GatewayProcess(["--ping-interval", "1s", "--pong-timeout", "1s", "--close-timeout", "1s"], threads: 1)
        let s = try RawSocket(port: gw.port)
        let (req, _) = WebSocketHandshake.clientRequest(host: "127.0.0.1", path: "/ws")
        try s.send(req)
        let start = Date()
        var reader = WebSocketReader(role: .client)
        var pings = 0
        var closeCode: UInt16? = nil
        var sawEOF = false
        var head = HTTPResponseHeadParser()
        var upgraded = false
        while Date().timeIntervalSince(start) < 8 {
            do {
                if try !s.fill(timeout: 0.5) { continue }
            } catch {
                sawEOF = true
                break
            }
            if !upgraded {
                if case .complete(_, let consumed) = try s.buffer.withUnsafeBytes({ try head.feed($0) }) {
                    s.buffer.removeFirst(consumed)
                    upgraded = true
                } else {
                    head = HTTPResponseHeadParser()
                    continue
                }
            }
            var bytes = s.buffer
            s.buffer = []
            try bytes.withUnsafeMutableBytes { b in
                try reader.feed(b) { ev in
                    if case .ping = ev { pings += 1 }
                    if case .close(let code, _) = ev { closeCode = code?.rawValue }
                    return true
                }
            }
        }
        let elapsed = Date().timeIntervalSince(start)
        #expect(pings >= 1)
        #expect(closeCode == 1001)
        #expect(sawEOF)
        #expect(elapsed < 1 + 1 + 1 + 2)
        usleep(300_000)
        #expect(try gw.metric("switchboard_connections_open") == 0)
        #expect(try gw.metric("switchboard_reaped_connections_total{reason=\"ping_timeout\"}") == 1)
    }

    @Test func clientThatNeverUpgradesIsClosedAtTheHandshakeDeadline() throws {
        let gw = try GatewayProcess(["--handshake-timeout", "1s"], threads: 1)
        let s = try RawSocket(port: gw.port)
        try s.send(Array("GET /ws HTTP/1.1\r\n".utf8))  // and nothing more (slowloris)
        let start = Date()
        #expect(s.waitForEOF(timeout: 4))
        #expect(Date().timeIntervalSince(start) < 3)
    }

    @Test func sigtermDrainsClientsWithReconnectAnd1012AndExitsZero() throws {
        let gw = try GatewayProcess(["--drain-delay", "0", "--drain-window", "1s", "--drain-deadline", "5s"], threads: 2)
        let clients = try (0..<6).map { _ in try WSClient(port: gw.port) }
        for c in clients { _ = try c.join("r") }
        kill(gw.pid, SIGTERM)
        usleep(100_000)
        let (ready, _) = try httpGet(port: gw.adminPort, path: "/ready")
        #expect(ready == 503)
        for c in clients {
            let m = try c.nextJSON(timeout: 5)
            #expect(m.op == "reconnect" && m.afterMs != nil)
            #expect(try c.expectClose(timeout: 5) == 1012)
        }
        #expect(gw.waitForExit(timeout: 10) == 0)
    }

    @Test func publishAPIRejectsWrongKeyAndReachesMembers() throws {
        let gw = try GatewayProcess(["--api-key", "s3cret"], threads: 2)
        let member = try WSClient(port: gw.port)
        _ = try member.join("news")
        let body = Array("{\"room\":\"news\",\"data\":{\"headline\":\"hi\"}}".utf8)
        let (s401, _) = try httpRequest(port: gw.adminPort, method: "POST", path: "/api/publish", headers: ["Authorization": "Bearer wrong"], body: body)
        #expect(s401 == 401)
        let (s401b, _) = try httpRequest(port: gw.adminPort, method: "POST", path: "/api/publish", body: body)
        #expect(s401b == 401)
        let (s400, reason) = try httpRequest(
            port: gw.adminPort, method: "POST", path: "/api/publish", headers: ["Authorization": "Bearer s3cret"], body: Array("{\"data\":1}".utf8))
        #expect(s400 == 400 && reason.contains("room"))
        let (s202, ok) = try httpRequest(port: gw.adminPort, method: "POST", path: "/api/publish", headers: ["Authorization": "Bearer s3cret"], body: body)
        #expect(s202 == 202 && ok.contains("\"offset\""))
        let m = try member.nextJSON()
        #expect(m.op == "message" && m.room == "news")
        #expect(String(decoding: m.data?.bytes ?? [], as: UTF8.self) == "{\"headline\":\"hi\"}")
    }

    @Test func invalidFlagsExitNonZeroWithOneLine() throws {
        let p = Process()
        p.executableURL = GatewayProcess.binary
        p.arguments = ["--port", "notaport"]
        let pipe = Pipe()
        p.standardError = pipe
        try p.run()
        p.waitUntilExit()
        #expect(p.terminationStatus == 2)
        let err = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(err.contains("--port") && err.split(separator: "\n").count == 1)
    }
}
