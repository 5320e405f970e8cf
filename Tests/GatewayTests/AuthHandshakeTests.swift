import Foundation
import Glibc
import Protocol
import Runtime
import Testing

@testable import Gateway

/// Authentication, authorization, Origin and admission against the real binary: every answer a handshake
/// or an auth op can get (401/403/429/431 before the upgrade; 4001/4002/4003 and `unauthorized`,
/// `forbidden`, `token_expired` after it).
@Suite(.serialized) struct AuthHandshakeTests {
    let keys = TestKeys.shared

    func authGateway(_ extra: [String] = [], threads: Int = 2) throws -> GatewayProcess {
        try GatewayProcess(
            [
                "--jwt-secret", keys.secret, "--jwt-public-key", keys.rsaPublic, "--jwt-public-key", "ec-1=\(keys.ecPublic)",
                "--token-cookie", "sb_token"
            ] + extra, threads: threads)
    }

    func bearer(_ t: String) -> [HTTPHeader] { [HTTPHeader("Authorization", "Bearer \(t)")] }

    @Test func tokenInHeaderQueryOrCookieIsVerifiedBeforeThe101() throws {
        let gw = try authGateway()
        let viaHeader = try WSClient(port: gw.port, headers: bearer(TokenFactory.make(alg: "HS256")))
        #expect(try viaHeader.join("lobby").op == "joined")
        let viaQuery = try WSClient(port: gw.port, path: "/ws?token=" + TokenFactory.make(alg: "RS256"))
        #expect(try viaQuery.join("user:alice").op == "joined")
        let viaCookie = try WSClient(port: gw.port, headers: [HTTPHeader("Cookie", "theme=dark; sb_token=\(TokenFactory.make(alg: "ES256", kid: "ec-1"))")])
        #expect(try viaCookie.join("stream:7").op == "joined")
        // The 101 is only sent after verification: hello names the user.
        let raw = try upgradeAnswer(port: gw.port, headers: bearer(TokenFactory.make(alg: "HS256", claims: TokenFactory.claims(sub: "bob"))))
        #expect(raw.status == 101)
        #expect(try gw.metric("switchboard_auth_attempts_total{result=\"ok\"}") ?? 0 >= 4)
        let log = gw.log()
        #expect(!log.contains("authentication is OFF"))
    }

    @Test func everyFailingTokenIsAnswered401BeforeAnyUpgrade() throws {
        let gw = try authGateway(["--jwt-leeway", "5s"])
        let now = TokenFactory.now
        let good = TokenFactory.make(alg: "ES256")
        let p = good.split(separator: ".").map(String.init)
        let body = TokenFactory.json(TokenFactory.claims())
        let bad: [(String, String)] = [
            ("expired", TokenFactory.make(claims: TokenFactory.claims(exp: now - 60))),
            ("not yet valid", TokenFactory.make(alg: "RS256", claims: TokenFactory.claims(extra: ["nbf": now + 3600]))),
            ("wrong signature", TokenFactory.tamperSignature(TokenFactory.make(alg: "RS256"))),
            ("wrong key", TokenFactory.make(alg: "HS256", key: "some-other-secret-that-is-long-enough!!")),
            ("wrong alg", TokenFactory.make(alg: "ES384")),
            ("rsa key as hmac secret", TokenFactory.make(alg: "HS256", key: try String(contentsOfFile: keys.rsaPublic, encoding: .utf8))),
            ("alg none", TokenFactory.json(["alg": "none"]) + "." + body + "."),
            ("unknown kid", TokenFactory.make(alg: "ES256", kid: "ec-9")),
            ("malformed base64", p[0] + ".@@@." + p[2]),
            ("truncated", String(good.dropLast(10))),
            ("two parts", p[0] + "." + p[1]),
            ("not a jwt", "hello"),
            ("empty bearer", "")
        ]
        for (name, token) in bad {
            let a = try upgradeAnswer(port: gw.port, headers: bearer(token))
            #expect(a.status == 401, "\(name): \(a.text.prefix(120))")
            #expect(headerValue(a.text, "WWW-Authenticate")?.hasPrefix("Bearer") == true || a.status != 401, "\(name)")
            let q = try upgradeAnswer(port: gw.port, target: "/ws?token=" + (token.isEmpty ? "" : token))
            #expect(q.status == 401, "\(name) in the query: \(q.text.prefix(80))")
        }
        // A 100 KB token cannot even fit in a request head: 431 before any upgrade.
        let huge = String(repeating: "A", count: 100 * 1024)
        #expect(try upgradeAnswer(port: gw.port, headers: bearer(huge)).status == 431)
        #expect(try upgradeAnswer(port: gw.port, target: "/ws?token=" + huge).status == 431)
        #expect(try gw.metric("switchboard_handshakes_rejected_total{status=\"401\"}") == Double(bad.count * 2))
        #expect(try gw.metric("switchboard_auth_attempts_total{result=\"invalid\"}") == Double(bad.count * 2))
        #expect(try gw.metric("switchboard_connections_open") == 0)
    }

    @Test func tokenlessUpgradeMustAuthenticateWithinTheAuthTimeout() throws {
        let gw = try authGateway(["--auth-timeout", "1s"])
        // Upgraded without a token: no hello, every op but auth is refused, the connection stays open.
        let c = try WSClient(port: gw.port, expectHello: false)
        try c.sendOp(#"{"op":"join","room":"lobby"}"#)
        let e = try c.nextJSON()
        #expect(e.op == "error" && e.code == "unauthorized")
        try c.sendOp(#"{"op":"publish","room":"lobby","data":1,"id":9}"#)
        let e2 = try c.nextJSON()
        #expect(e2.code == "unauthorized" && e2.id?.description == "9")
        try c.sendOp(#"{"op":"auth","token":"\#(TokenFactory.make(alg: "RS256"))"}"#)
        let hello = try c.nextJSON()
        #expect(hello.op == "hello")
        #expect(try c.join("lobby").op == "joined")
        // Silent: closed 4001 after the auth timeout.
        let silent = try WSClient(port: gw.port, expectHello: false)
        let started = Date()
        #expect(try silent.expectClose(timeout: 4) == 4001)
        #expect(Date().timeIntervalSince(started) >= 0.8)
        // A bad token in the auth op: 4002, whatever is wrong with it, including 100 KB of it; an expired one
        // 4003 (get a fresh token: what the reference clients ask their token provider for).
        for (token, code) in [
            ("garbage", 4002), (TokenFactory.make(claims: TokenFactory.claims(exp: TokenFactory.now - 3600)), 4003),
            (TokenFactory.json(["alg": "none"]) + "." + TokenFactory.json(TokenFactory.claims()) + ".", 4002),
            (String(repeating: "x", count: 100 * 1024), 4002)
        ] as [(String, UInt16)] {
            let b = try WSClient(port: gw.port, expectHello: false)
            try b.sendOp(#"{"op":"auth","token":"\#(token)"}"#)
            #expect(try b.expectClose(timeout: 3) == code, "\(token.prefix(40))")
        }
        #expect(try gw.metric("switchboard_connections_closed_total{code=\"4001\"}") == 1)
        #expect(try gw.metric("switchboard_connections_closed_total{code=\"4002\"}") == 3)
        #expect(try gw.metric("switchboard_connections_closed_total{code=\"4003\"}") == 1)
        #expect(try gw.metric("switchboard_auth_attempts_total{result=\"timeout\"}") == 1)
    }

    @Test func claimsGateJoinPublishAndPresenceAndTheConnectionStaysOpen() throws {
        let gw = try authGateway()
        let t = TokenFactory.make(
            alg: "HS256", claims: TokenFactory.claims(sub: "alice", rooms: ["lobby", "user:{sub}", "stream:*"], publish: ["lobby", "user:{sub}"]))
        let c = try WSClient(port: gw.port, headers: bearer(t))
        for room in ["admin", "user:bob", "stream:1:2", "stream"] {
            let r = try c.join(room)
            #expect(r.op == "error" && r.code == "forbidden", "\(room)")
        }
        #expect(try c.join("user:alice").op == "joined")
        #expect(try c.join("stream:news").op == "joined")
        try c.sendOp(#"{"op":"publish","room":"stream:news","data":{"x":1},"id":"p1"}"#)
        let denied = try c.nextJSON()
        #expect(denied.code == "forbidden" && denied.id?.description == "\"p1\"")
        try c.sendOp(#"{"op":"presence","room":"admin"}"#)
        #expect(try c.nextJSON().code == "forbidden")
        try c.sendOp(#"{"op":"publish","room":"user:alice","data":{"x":2},"id":"p2"}"#)
        let msgs = try c.drainJSON(quiet: 0.5)
        #expect(msgs.contains { $0.op == "ack" && $0.id?.description == "\"p2\"" })
        #expect(msgs.contains { $0.op == "message" && $0.room == "user:alice" })
        #expect(try gw.metric("switchboard_auth_forbidden_total{op=\"join\"}") == 5)
        #expect(try gw.metric("switchboard_auth_forbidden_total{op=\"publish\"}") == 1)
        #expect(try gw.metric("switchboard_connections_open") == 1)
    }

    @Test func expiryWarnsThenClosesUnlessRenewed() throws {
        let gw = try authGateway(["--jwt-leeway", "0s", "--token-grace", "1s"])
        let exp = TokenFactory.now + 2
        // Not renewed: token_expired, then 4003 after the grace period.
        let lapsed = try WSClient(port: gw.port, headers: bearer(TokenFactory.make(claims: TokenFactory.claims(exp: exp))))
        #expect(try lapsed.join("lobby").op == "joined")
        // token_expiring comes first, halfway through a token shorter than --token-expiring-notice.
        let notice = try lapsed.nextJSON(timeout: 4)
        #expect(notice.op == "token_expiring")
        let warning = try lapsed.nextJSON(timeout: 4)
        #expect(warning.op == "error" && warning.code == "token_expired")
        try lapsed.sendOp(#"{"op":"join","room":"user:alice"}"#)
        #expect(try lapsed.nextJSON().code == "token_expired")
        #expect(try lapsed.expectClose(timeout: 3) == 4003)
        // Renewed within the grace period: the session continues, rooms kept.
        let renewing = try WSClient(port: gw.port, headers: bearer(TokenFactory.make(claims: TokenFactory.claims(exp: TokenFactory.now + 2))))
        #expect(try renewing.join("lobby").op == "joined")
        #expect(try renewing.nextJSON(timeout: 4).op == "token_expiring")
        #expect(try renewing.nextJSON(timeout: 4).code == "token_expired")
        try renewing.sendOp(#"{"op":"auth","token":"\#(TokenFactory.make(alg: "ES256", claims: TokenFactory.claims(exp: TokenFactory.now + 3600)))"}"#)
        #expect(try renewing.nextJSON().op == "hello")
        let resumed = try renewing.nextJSON()
        #expect(resumed.op == "joined" && resumed.room == "lobby" && resumed.recovered == true, "delivery resumes where it stopped")
        #expect(try renewing.join("user:alice").op == "joined")
        #expect(try renewing.next(timeout: 2) == nil, "no close after the grace period")
        // A refresh for another user is refused.
        try renewing.sendOp(#"{"op":"auth","token":"\#(TokenFactory.make(claims: TokenFactory.claims(sub: "mallory")))"}"#)
        #expect(try renewing.expectClose() == 4002)
        #expect(try gw.metric("switchboard_auth_attempts_total{result=\"expired\"}") == 1)
    }

    /// Token lifecycle (issue 11, finding 6): after exp no room message reaches the session; a fresh `auth`
    /// resumes each room from where delivery stopped, with no gap and no duplicate; a refresh with a token that
    /// is itself expired closes 4003 (not 4002); a token without exp is refused at the handshake.
    @Test func expiredSessionIsSuspendedAndResumesAfterRenewal() throws {
        let gw = try authGateway(["--jwt-leeway", "0s", "--token-grace", "5s"])
        let member = try WSClient(port: gw.port, headers: bearer(TokenFactory.make(claims: TokenFactory.claims(exp: TokenFactory.now + 2))))
        let publisher = try WSClient(port: gw.port, headers: bearer(TokenFactory.make()))
        #expect(try member.join("lobby").op == "joined")
        func publish(_ n: Int) throws {
            try publisher.sendOp(#"{"op":"publish","room":"lobby","data":{"n":\#(n)},"id":\#(n)}"#)
            #expect(try publisher.nextJSON().op == "ack")
        }
        try publish(1)
        #expect(try member.nextJSON().data?.description == #"{"n":1}"#)
        #expect(try member.nextJSON(timeout: 4).op == "token_expiring")
        #expect(try member.nextJSON(timeout: 4).code == "token_expired")
        try publish(2)
        try publish(3)
        #expect(try member.drainJSON(quiet: 0.5).filter { $0.op == "message" }.isEmpty, "nothing is delivered to an expired session")
        try member.sendOp(#"{"op":"auth","token":"\#(TokenFactory.make(claims: TokenFactory.claims(exp: TokenFactory.now + 3600)))"}"#)
        #expect(try member.nextJSON().op == "hello")
        let joined = try member.nextJSON()
        #expect(joined.op == "joined" && joined.room == "lobby" && joined.recovered == true)
        try publish(4)
        let rest = try member.drainJSON(quiet: 0.5).filter { $0.op == "message" }.compactMap { $0.data?.description }
        #expect(rest == [#"{"n":2}"#, #"{"n":3}"#, #"{"n":4}"#], "the missed messages, in order, then live ones, once each")
        // A refresh with an expired token: 4003.
        try member.sendOp(#"{"op":"auth","token":"\#(TokenFactory.make(claims: TokenFactory.claims(exp: TokenFactory.now - 60)))"}"#)
        #expect(try member.expectClose() == 4003)
        // No exp at all: refused before the upgrade (--jwt-require-exp is on by default).
        #expect(throws: (any Error).self) { try WSClient(port: gw.port, headers: self.bearer(TokenFactory.make(claims: TokenFactory.claims(exp: nil)))) }
    }

    @Test func foreignOriginGets403AndRequestsWithoutOriginFollowTheFlag() throws {
        let gw = try authGateway(["--allowed-origins", "https://app.example.com,https://*.example.org", "--allow-no-origin", "no"])
        let token = TokenFactory.make()
        func answer(_ origin: String?) throws -> Int {
            var h = bearer(token)
            if let origin { h.append(HTTPHeader("Origin", origin)) }
            return try upgradeAnswer(port: gw.port, headers: h).status
        }
        #expect(try answer("https://evil.example.com") == 403)
        #expect(try answer("https://app.example.com.evil.net") == 403)
        #expect(try answer("http://app.example.com") == 403)
        #expect(try answer("null") == 403)
        #expect(try answer(nil) == 403)
        #expect(try answer("https://app.example.com") == 101)
        #expect(try answer("https://eu.cdn.example.org") == 101)
        // The Origin check comes first: a forbidden origin with a bad token is still a 403, never a 401.
        var h = bearer("garbage")
        h.append(HTTPHeader("Origin", "https://evil.example.com"))
        #expect(try upgradeAnswer(port: gw.port, headers: h).status == 403)
        // Two Origin headers are refused.
        #expect(
            try upgradeAnswer(
                port: gw.port, headers: bearer(token) + [HTTPHeader("Origin", "https://app.example.com"), HTTPHeader("Origin", "https://evil.com")]
            ).status == 403)
        #expect(try gw.metric("switchboard_origin_rejected_total") == 7)
        #expect(try gw.metric("switchboard_handshakes_rejected_total{status=\"403\"}") == 7)
    }

    @Test func perIPLimitsAnswer429WithRetryAfterAndXForwardedForNeedsATrustedProxy() throws {
        let gw = try GatewayProcess(["--max-connections-per-ip", "2"], threads: 2)
        var a: WSClient? = try WSClient(port: gw.port)
        let b = try WSClient(port: gw.port)
        let third = try upgradeAnswer(port: gw.port)
        #expect(third.status == 429 && headerValue(third.text, "Retry-After") == "1")
        // X-Forwarded-For from an untrusted peer changes nothing.
        #expect(try upgradeAnswer(port: gw.port, headers: [HTTPHeader("X-Forwarded-For", "198.51.100.7")]).status == 429)
        try a?.send(.close, FrameEncoder.closePayload(code: .normalClosure))
        _ = try a?.expectClose()
        a = nil  // FIN: the server closes the socket and releases the slot
        usleep(300_000)
        let again = try WSClient(port: gw.port)
        _ = (b, again)
        #expect(try gw.metric("switchboard_admission_rejected_total{reason=\"connections\"}") == 2)

        let rate = try GatewayProcess(["--max-handshakes-per-ip", "3", "--trusted-proxies", "127.0.0.1"], threads: 1)
        var statuses: [Int] = []
        for _ in 0..<5 { statuses.append(try upgradeAnswer(port: rate.port, headers: [HTTPHeader("X-Forwarded-For", "198.51.100.7")]).status) }
        let forged = try upgradeAnswer(port: rate.port, headers: [HTTPHeader("X-Forwarded-For", "6.6.6.6, 198.51.100.7")])
        #expect(statuses.filter { $0 == 101 }.count == 3 && statuses.filter { $0 == 429 }.count == 2, "\(statuses)")
        #expect(forged.status == 429 && headerValue(forged.text, "Retry-After") == "1", "a forged left-most hop does not escape the limit")
        // Behind a trusted proxy every client IP has its own bucket.
        #expect(try upgradeAnswer(port: rate.port, headers: [HTTPHeader("X-Forwarded-For", "198.51.100.8")]).status == 101)
        #expect(try rate.metric("switchboard_admission_rejected_total{reason=\"rate\"}") == 3)
    }

    @Test func devModeAllowsEverythingAndWarns() throws {
        let gw = try GatewayProcess([], threads: 1)
        let c = try WSClient(port: gw.port)
        #expect(try c.join("anything:at:all").op == "joined")
        try c.sendOp(#"{"op":"auth","token":"x"}"#)
        #expect(try c.nextJSON().code == "bad_request")
        let log = gw.log()
        #expect(log.contains("authentication is OFF (dev mode)"))
        #expect(log.contains("\"level\":\"warn\""))
    }

    @Test func malformedAuthInputsNeverCrashTheProcessOrLeakAConnection() throws {
        let gw = try authGateway(["--auth-timeout", "1s", "--allowed-origins", "https://app.example.com", "--max-handshakes-per-ip", "100000"])
        usleep(300_000)
        let fdsBefore = try gw.metric("switchboard_process_open_fds") ?? 0
        var rng = SystemRandomNumberGenerator()
        let good = TokenFactory.make(alg: "ES256", kid: "ec-1")
        func mutated() -> String {
            var bytes = Array(good.utf8)
            for _ in 0..<Int.random(in: 1...6, using: &rng) {
                bytes[Int.random(in: 0..<bytes.count, using: &rng)] = UInt8.random(in: 0x21...0x7E, using: &rng)
            }
            return String(decoding: bytes.prefix(Int.random(in: 1...bytes.count, using: &rng)), as: UTF8.self)
        }
        let headerVariants: [(String) -> [HTTPHeader]] = [
            { [HTTPHeader("Authorization", "Bearer \($0)")] },
            { [HTTPHeader("Authorization", "bearer    \($0)   ")] },
            { [HTTPHeader("Authorization", "Basic \($0)")] },
            { [HTTPHeader("Authorization", $0)] },
            { [HTTPHeader("Cookie", "sb_token=\($0); sb_token=x")] },
            { [HTTPHeader("Cookie", "sb_token=\"\($0)\"")] },
            { [HTTPHeader("Origin", $0), HTTPHeader("Authorization", "Bearer \(good)")] },
            { [HTTPHeader("X-Forwarded-For", $0), HTTPHeader("Authorization", "Bearer \($0)")] }
        ]
        for i in 0..<300 {
            let token = mutated()
            let variant = headerVariants[i % headerVariants.count]
            let status = try upgradeAnswer(port: gw.port, target: i % 3 == 0 ? "/ws?token=\(token)" : "/ws", headers: variant(token)).status
            #expect([101, 400, 401, 403].contains(status), "\(status) for \(token.prefix(30))")
        }
        // Garbage auth ops on token-less connections, some cut off mid-frame.
        for i in 0..<100 {
            let c = try WSClient(port: gw.port, expectHello: false)
            switch i % 5 {
            case 0: try c.sendOp(#"{"op":"auth","token":"\#(mutated())"}"#)
            case 1: try c.sendOp(#"{"op":"auth","token":123}"#)
            case 2: try c.sendOp(#"{"op":"auth"}"#)
            case 3: try c.send(.text, Array(#"{"op":"auth","token":"#.utf8), fin: false)
            default: try c.sendOp(#"{"op":"auth","token":"\#(String(repeating: "é", count: 40_000))"}"#)
            }
        }
        // Handshakes abandoned halfway with a token.
        for _ in 0..<50 {
            let s = try RawSocket(port: gw.port)
            try s.send(Array("GET /ws?token=\(mutated()) HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n".utf8))
        }
        #expect(gw.process.isRunning)
        // Everything above is closed by its deadline (auth timeout 1 s, handshake timeout 5 s).
        let deadline = Date().addingTimeInterval(12)
        var open = -1.0
        var fds = 0.0
        while Date() < deadline {
            open = try gw.metric("switchboard_connections_open") ?? -1
            fds = try gw.metric("switchboard_process_open_fds") ?? 0
            if open == 0 && fds <= fdsBefore + 2 { break }
            usleep(250_000)
        }
        #expect(open == 0)
        #expect(fds <= fdsBefore + 2, "open fds \(fds) vs \(fdsBefore) before")
        #expect(try httpGet(port: gw.adminPort, path: "/health").0 == 200)
        #expect(gw.process.isRunning)
    }
}
