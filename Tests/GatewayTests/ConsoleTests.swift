import Foundation
import Glibc
import Protocol
import Runtime
import Testing

/// The operator console on the admin port (`--console yes`, AdminServer+Console.swift): off by default,
/// behind the API key, a login cookie that is HttpOnly and SameSite=Strict (Secure over HTTPS), a CSRF
/// token and a same-origin check on every state-changing request, a strict Content-Security-Policy, and
/// the page itself working in headless Chromium under that policy.
@Suite struct ConsoleTests {
    struct Answer {
        let status: Int
        let headers: [(String, String)]
        let body: String
        func header(_ name: String) -> String? { headers.first { $0.0.lowercased() == name.lowercased() }?.1 }
    }

    /// One request with curl (`-si`), so the answer's headers can be read; `extra` are curl arguments.
    func request(_ url: String, _ extra: [String] = []) throws -> Answer {
        let (status, out) = try runTool(["curl", "-si", "--max-time", "5"] + extra + [url])
        guard status == 0, let split = out.range(of: "\r\n\r\n") else { throw TestFailure("curl \(url): \(status) \(out)") }
        let lines = out[..<split.lowerBound].split(separator: "\r\n")
        let code = Int(lines.first?.split(separator: " ").dropFirst().first ?? "") ?? 0
        let headers = lines.dropFirst().compactMap { line -> (String, String)? in
            guard let c = line.firstIndex(of: ":") else { return nil }
            return (String(line[..<c]), line[line.index(after: c)...].trimmingCharacters(in: .whitespaces))
        }
        return Answer(status: code, headers: headers, body: String(out[split.upperBound...]))
    }

    /// Logs in with `key`; returns the session cookie's value and the raw Set-Cookie header.
    func login(_ admin: String, key: String) throws -> (String, String) {
        let a = try request("\(admin)/console/login", ["-X", "POST", "-H", "Content-Type: application/json", "-d", "{\"key\":\"\(key)\"}"])
        guard a.status == 204, let set = a.header("Set-Cookie"), let v = set.split(separator: ";").first?.split(separator: "=", maxSplits: 1).last else {
            throw TestFailure("login: \(a.status) \(a.headers)")
        }
        return (String(v), set)
    }

    func csrf(_ admin: String, cookie: String) throws -> String {
        let a = try request("\(admin)/console/session", ["-b", "sb_console=\(cookie)"])
        let json = try JSONSerialization.jsonObject(with: Data(a.body.utf8)) as? [String: Any]
        return try #require(json?["csrf"] as? String, "\(a.status) \(a.body)")
    }

    @Test func offUnlessEnabledAndNeedsTheAPIKey() throws {
        let off = try GatewayProcess(["--api-key", "k"], threads: 1)
        #expect(try request("http://127.0.0.1:\(off.adminPort)/console").status == 404)
        #expect(try request("http://127.0.0.1:\(off.adminPort)/console/assets/console.js").status == 404)
        let noKey = try GatewayProcess(["--console", "yes"], threads: 1)
        let a = try request("http://127.0.0.1:\(noKey.adminPort)/console")
        #expect(a.status == 404 && a.body.contains("the console needs --api-key"), "\(a.body)")
    }

    @Test func loginPageStrictPolicyAndCookie() throws {
        let gw = try GatewayProcess(["--console", "yes", "--api-key", "console-key"], threads: 1)
        let admin = "http://127.0.0.1:\(gw.adminPort)"
        let page = try request("\(admin)/console")
        #expect(page.status == 200 && page.body.contains("id=\"login\"") && !page.body.contains("id=\"messages\""))
        let csp = try #require(page.header("Content-Security-Policy"))
        #expect(
            csp == "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self' ws://127.0.0.1:\(gw.port)/ws; "
                + "form-action 'self'; base-uri 'none'; frame-ancestors 'none'", "\(csp)")
        #expect(!csp.contains("unsafe"))
        #expect(page.header("X-Frame-Options") == "DENY" && page.header("X-Content-Type-Options") == "nosniff")
        // No inline script or style anywhere in the pages (the policy would block them).
        for body in [page.body] { #expect(!body.contains("<script>") && !body.contains("style=") && !body.contains("onclick")) }

        let wrong = try request("\(admin)/console/login", ["-X", "POST", "-d", "{\"key\":\"console-kex\"}"])
        #expect(wrong.status == 401 && wrong.header("Set-Cookie") == nil)
        let crossSite = try request("\(admin)/console/login", ["-X", "POST", "-H", "Origin: http://evil.example", "-d", "{\"key\":\"console-key\"}"])
        #expect(crossSite.status == 403 && crossSite.header("Set-Cookie") == nil)
        let (cookie, setCookie) = try login(admin, key: "console-key")
        #expect(cookie.count == 64 && cookie.allSatisfy(\.isHexDigit))
        #expect(setCookie == "sb_console=\(cookie); Path=/console; Max-Age=43200; HttpOnly; SameSite=Strict", "\(setCookie)")
        // Logged in: the console itself, same policy.
        let console = try request("\(admin)/console", ["-b", "sb_console=\(cookie)"])
        #expect(console.status == 200 && console.body.contains("id=\"messages\"") && console.header("Content-Security-Policy") == csp)
        #expect(!console.body.contains("<script>") && !console.body.contains("style="))
        // A made-up session is no session.
        #expect(try request("\(admin)/console/session", ["-b", "sb_console=\(String(repeating: "a", count: 64))"]).status == 401)
        #expect(try request("\(admin)/console/session").status == 401)
    }

    @Test func stateChangesNeedTheCSRFTokenAndTheSameOrigin() throws {
        let gw = try GatewayProcess(["--console", "yes", "--api-key", "console-key"], threads: 1)
        let admin = "http://127.0.0.1:\(gw.adminPort)"
        let member = try WSClient(port: gw.port)
        _ = try member.join("ops")
        let (cookie, _) = try login(admin, key: "console-key")
        let token = try csrf(admin, cookie: cookie)
        #expect(token.count == 64 && token != cookie)
        let publish = { (extra: [String]) throws -> Answer in
            try self.request(
                "\(admin)/console/api/publish", ["-X", "POST", "-H", "Content-Type: application/json", "-d", "{\"room\":\"ops\",\"data\":{\"n\":1}}"] + extra)
        }
        #expect(try publish([]).status == 401, "no session")
        #expect(try publish(["-b", "sb_console=\(cookie)"]).status == 403, "no token")
        #expect(try publish(["-b", "sb_console=\(cookie)", "-H", "X-CSRF-Token: \(String(token.reversed()))"]).status == 403, "wrong token")
        #expect(try publish(["-b", "sb_console=\(cookie)", "-H", "X-CSRF-Token: \(token)", "-H", "Origin: http://evil.example"]).status == 403, "cross-origin")
        #expect(try publish(["-H", "X-CSRF-Token: \(token)"]).status == 401, "a token without its cookie")
        let ok = try publish(["-b", "sb_console=\(cookie)", "-H", "X-CSRF-Token: \(token)", "-H", "Origin: http://127.0.0.1:\(gw.adminPort)"])
        #expect(ok.status == 202 && ok.body.contains("\"offset\""), "\(ok.status) \(ok.body)")
        // Exactly the one accepted publish reached the room.
        let got = try member.drainJSON(quiet: 0.5).filter { $0.op == "message" }
        #expect(got.count == 1)
        // Reads need the session, not the token, and are answered as the API answers them.
        #expect(try request("\(admin)/console/api/analytics?count=1", ["-b", "sb_console=\(cookie)"]).status == 200)
        #expect(try request("\(admin)/console/api/analytics?count=1").status == 401)
        // Logout: token required; afterwards the cookie is worth nothing.
        #expect(try request("\(admin)/console/logout", ["-X", "POST", "-b", "sb_console=\(cookie)"]).status == 403)
        let out = try request("\(admin)/console/logout", ["-X", "POST", "-b", "sb_console=\(cookie)", "-H", "X-CSRF-Token: \(token)"])
        #expect(out.status == 204 && out.header("Set-Cookie")?.contains("sb_console=; Path=/console; Max-Age=0") == true)
        #expect(try request("\(admin)/console/session", ["-b", "sb_console=\(cookie)"]).status == 401)
        #expect(try publish(["-b", "sb_console=\(cookie)", "-H", "X-CSRF-Token: \(token)"]).status == 401)
    }

    @Test func assetsAreTheRepositoryFiles() throws {
        let gw = try GatewayProcess(["--console", "yes", "--api-key", "k"], threads: 1)
        let admin = "http://127.0.0.1:\(gw.adminPort)"
        let js = try request("\(admin)/console/assets/switchboard.js")
        let file = try String(contentsOf: BrowserTests.root.appendingPathComponent("clients/js/switchboard.js"), encoding: .utf8)
        #expect(js.status == 200 && js.body == file, "the console serves clients/js/switchboard.js as it is")
        #expect(js.header("Content-Type") == "text/javascript; charset=utf-8")
        #expect(try request("\(admin)/console/assets/console.css").header("Content-Type") == "text/css; charset=utf-8")
        #expect(try request("\(admin)/console/assets/../metrics", ["--path-as-is"]).status == 404)
        #expect(try request("\(admin)/console/assets/nope.js").status == 404)
        #expect(try request("\(admin)/console/nope").status == 404)
    }

    @Test func cookieIsSecureOverHTTPS() throws {
        let ca = try TestCA()
        let tls = ["--cacert", ca.caPath]
        let gw = try GatewayProcess(
            ["--console", "yes", "--api-key", "k", "--admin-tls-cert", ca.path("server.pem"), "--admin-tls-key", ca.path("server.key.pem")],
            threads: 1, healthy: { port in (try? self.request("https://127.0.0.1:\(port)/health", tls))?.status == 200 })
        let a = try request("https://127.0.0.1:\(gw.adminPort)/console/login", tls + ["-X", "POST", "-d", "{\"key\":\"k\"}"])
        #expect(a.status == 204 && a.header("Set-Cookie")?.hasSuffix("; HttpOnly; SameSite=Strict; Secure") == true, "\(a.headers)")
        // The page's own origin is https://…: an http:// Origin is another origin.
        let downgraded = try request(
            "https://127.0.0.1:\(gw.adminPort)/console/login", tls + ["-X", "POST", "-H", "Origin: http://127.0.0.1:\(gw.adminPort)", "-d", "{\"key\":\"k\"}"])
        #expect(downgraded.status == 403)
    }

    /// The real page in headless Chromium: the login form, then the console under its CSP showing live
    /// data (connections from /metrics, a tailed room's messages over WebSocket, presence). A policy that
    /// blocked the page's own scripts, or a login that did not stick, fails here.
    /// With authentication on, the page tails through one-use tickets (ConsoleTickets.swift): a logged-in
    /// session with its CSRF token gets one; it authenticates a WebSocket once, as a user who may join any room
    /// and publish to none; spent, forged or CSRF-less tickets are refused.
    @Test func ticketsLetTheConsoleTailWhenAuthenticationIsOn() throws {
        let gw = try GatewayProcess(["--console", "yes", "--api-key", "console-key", "--jwt-secret", TestKeys.shared.secret], threads: 1)
        let admin = "http://127.0.0.1:\(gw.adminPort)"
        let (cookie, _) = try login(admin, key: "console-key")
        let session = try request("\(admin)/console/session", ["-b", "sb_console=\(cookie)"])
        #expect(session.body.contains("\"auth\":true"), "\(session.body)")
        let token = try csrf(admin, cookie: cookie)
        func ticket(_ extra: [String]) throws -> Answer {
            try request("\(admin)/console/ticket", ["-X", "POST", "-b", "sb_console=\(cookie)", "-d", "{}"] + extra)
        }
        #expect(try ticket([]).status == 403, "no CSRF token, no ticket")
        #expect(try request("\(admin)/console/ticket", ["-X", "POST", "-d", "{}"]).status == 401, "no session, no ticket")
        let answer = try ticket(["-H", "X-CSRF-Token: \(token)"])
        let json = try JSONSerialization.jsonObject(with: Data(answer.body.utf8)) as? [String: Any]
        let value = try #require(json?["token"] as? String, "\(answer.status) \(answer.body)")
        #expect(value.hasPrefix("sbconsole.") && value.count == 10 + 64)

        let console = try WSClient(port: gw.port, expectHello: false)
        try console.sendOp("{\"op\":\"auth\",\"token\":\"\(value)\"}")
        let hello = try console.nextJSON()
        #expect(hello.op == "hello", "\(hello)")
        _ = try console.join("any:room:at:all")
        let member = try WSClient(
            port: gw.port,
            headers: [HTTPHeader("Authorization", "Bearer \(TokenFactory.make(claims: TokenFactory.claims(rooms: ["any:**"], publish: ["any:**"])))")])
        try member.sendOp("{\"op\":\"publish\",\"room\":\"any:room:at:all\",\"data\":{\"n\":1}}")
        let seen = try console.drainJSON().first { $0.op == "message" }
        #expect(seen?.data?.description == "{\"n\":1}", "\(String(describing: seen))")
        try console.sendOp("{\"op\":\"publish\",\"room\":\"any:room:at:all\",\"data\":{},\"id\":7}")
        #expect(try console.nextJSON().code == "forbidden", "the console publishes through the API, not its socket")
        // Nor does anything reach the application backend in the name of a user called "console".
        try console.sendOp("{\"op\":\"rpc\",\"method\":\"m\",\"data\":{},\"id\":8}")
        #expect(try console.nextJSON().code == "forbidden", "no rpc as the console")
        try console.sendOp("{\"op\":\"analytics\",\"event\":\"e\",\"id\":9}")
        #expect(try console.nextJSON().code == "forbidden", "no analytics as the console")

        for spent in [value, "sbconsole." + String(repeating: "0", count: 64)] {
            let again = try WSClient(port: gw.port, expectHello: false)
            try again.sendOp("{\"op\":\"auth\",\"token\":\"\(spent)\"}")
            #expect(try again.expectClose() == 4002, "a spent or unknown ticket")
        }
    }

    @Test func consoleWorksInChromium() throws {
        guard let chromium = BrowserTests.chromium else {
            Issue.record("chromium not found (bash scripts/deps.sh test installs Debian's; or set CHROMIUM)")
            return
        }
        // Authentication on: the page must tail with its tickets (the production case).
        let gw = try GatewayProcess(["--console", "yes", "--api-key", "console-key", "--jwt-secret", TestKeys.shared.secret], threads: 2)
        let member = try WSClient(port: gw.port, headers: [HTTPHeader("Authorization", "Bearer \(TokenFactory.make())")])
        _ = try member.join("lobby")
        let devtools = try freePort()
        let profile = FileManager.default.temporaryDirectory.appendingPathComponent("switchboard-console-\(getpid())-\(gw.port)").path
        defer { try? FileManager.default.removeItem(atPath: profile) }
        let browser = try ChildProcess(
            chromium,
            BrowserTests.chromiumArguments(profile: profile)
                + ["--remote-debugging-address=127.0.0.1", "--remote-debugging-port=\(devtools)", "about:blank"])
        defer { browser.stop() }
        // Traffic while the page watches: one publish every 200 ms for at most 20 s.
        let stop = Lock(false)
        let publisher = Thread {
            for i in 0..<100 where !stop.withLock({ $0 }) {
                _ = try? httpRequest(
                    port: gw.adminPort, method: "POST", path: "/api/publish", headers: ["Authorization": "Bearer console-key"],
                    body: Array("{\"room\":\"lobby\",\"data\":{\"n\":\(i)}}".utf8))
                usleep(200_000)
            }
        }
        publisher.start()
        defer { stop.withLock { $0 = true } }
        let (status, out) = try runTool(
            [
                "node", BrowserTests.root.appendingPathComponent("scripts/console-screenshot.mjs").path,
                "\(devtools)", "http://127.0.0.1:\(gw.adminPort)", "console-key", "lobby", "", "5000"
            ], timeout: 90)
        #expect(status == 0, "\(out)\nchromium:\n\(browser.output.suffix(2000))")
        #expect(out.contains("\"presence\":\"presence 2 connections"), "the console and the member: \(out)")
    }
}
