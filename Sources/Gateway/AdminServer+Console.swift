import Foundation
import Glibc
import Protocol
import Runtime

// The operator console (`--console yes`, issue 19): a static page and the JS client, served by the admin
// port from bytes compiled into the binary (Sources/Gateway/Console, SwiftPM `embedInCode`), behind the
// API key. Routes, all under /console (docs/console.md):
//
//   GET  /console                 the console when logged in, else the login page (both with a strict CSP)
//   POST /console/login           {"key": "<--api-key>"} → 204 + Set-Cookie sb_console (HttpOnly; SameSite=Strict; Secure over TLS)
//   POST /console/logout          X-CSRF-Token → 204, cookie cleared
//   GET  /console/session         {"csrf","ws","node","auth"} for the page (logged in)
//   POST /console/ticket          X-CSRF-Token → {"token":"sbconsole.…","expires_in_ms"}: a one-use token for the page's
//                                 WebSocket when "auth" is true (ConsoleTickets.swift)
//   GET  /console/assets/<file>   console.js, console.css, login.js, switchboard.js (public: code, no data)
//   ANY  /console/api/<rest>      logged in (+ X-CSRF-Token unless GET/HEAD) → answered as /api/<rest> with the key
//
// Why a cookie and a CSRF token: a browser cannot attach `Authorization: Bearer` to a page load, and the
// page must not hold the key in script-readable storage. The cookie is HttpOnly (no script reads it) and
// SameSite=Strict (no cross-site request carries it); state-changing requests also need the session's
// CSRF token in a header (which a cross-site form cannot set) and, when the browser sends one, an Origin
// equal to the admin port's own.

extension Config {
    /// The console's flag, appended to the flag table (`--help` order).
    static let consoleOptions: [Option] = [
        Option(
            name: "console", kind: .flag, help: "yes/no: the operator console at /console on the admin port (needs --api-key to log in)",
            apply: { c, v throws(Invalid) in c.console = try yesNo(v, "console") }, current: { $0.console ? "yes" : "no" })
    ]
}

/// Console logins of this process: session id → CSRF token and expiry. Ids and tokens are 32 bytes from
/// the system CSPRNG (`SystemRandomNumberGenerator`: getrandom(2)), hex-encoded. At most `capacity`
/// sessions; past it the one closest to expiry is dropped, so logins cannot grow memory without bound.
final class ConsoleSessions: Sendable {
    /// The process's sessions (one node per process).
    static let shared = ConsoleSessions()
    /// Milliseconds a login lasts (12 h); the cookie's Max-Age is the same.
    static let lifetimeMs: UInt64 = 12 * 3_600_000
    static let capacity = 256

    private let table = Lock<[String: (csrf: String, expires: UInt64)]>([:])

    /// 64 hex digits from 32 random bytes.
    static func token() -> String {
        var rng = SystemRandomNumberGenerator()
        return (0..<4).map { _ in
            let s = String(rng.next() as UInt64, radix: 16)
            return String(repeating: "0", count: 16 - s.count) + s
        }.joined()
    }

    /// A new session: its id (the cookie) and CSRF token.
    func create(now: UInt64) -> (id: String, csrf: String) {
        let id = Self.token()
        let csrf = Self.token()
        table.withLock { t in
            t = t.filter { $0.value.expires > now }
            if t.count >= Self.capacity, let oldest = t.min(by: { $0.value.expires < $1.value.expires }) { t[oldest.key] = nil }
            t[id] = (csrf, now + Self.lifetimeMs)
        }
        return (id, csrf)
    }

    /// The CSRF token of a live session, nil for an unknown or expired id.
    func csrf(for id: String, now: UInt64) -> String? {
        table.withLock { t in
            guard let s = t[id] else { return nil }
            guard s.expires > now else { t[id] = nil; return nil }
            return s.csrf
        }
    }

    func remove(_ id: String) { table.withLock { $0[id] = nil } }
}

extension AdminConnection {
    static let consoleCookie = "sb_console"

    /// Answers every request under /console (the hook in `route`); `body` is the request body.
    func routeConsole(_ h: HTTPRequestHead, body: [UInt8]) {
        let config = loop.node.config
        guard config.console else { return respond(HTTPResponse(error: HTTPError(status: .notFound, reason: "not found", headers: []))) }
        // Any configured key logs in; requests are forwarded to the API with the first (all are equal there).
        guard let key = config.api.keys.first else {
            return respond(.json(.notFound, Envelope.error(.unavailable, message: "the console needs --api-key")))
        }
        let now = monotonicMilliseconds()
        let sessionID = Self.cookie(Self.consoleCookie, in: h)
        let csrf = sessionID.flatMap { ConsoleSessions.shared.csrf(for: $0, now: now) }
        let unauthorized = HTTPResponse.json(.unauthorized, Envelope.error(.unauthorized, message: "log in at /console"))
        let forbidden = HTTPResponse.json(.forbidden, Envelope.error(.forbidden, message: "missing or wrong X-CSRF-Token, or a cross-origin request"))
        let sameOrigin = consoleSameOrigin(h)
        let csrfOK = sameOrigin && csrf != nil && constantTimeEquals(h.headers["X-CSRF-Token"] ?? "", csrf!)

        switch (h.method, h.path) {
        case ("GET", "/console"), ("GET", "/console/"):
            respond(consolePage(csrf != nil ? PackageResources.console_html : PackageResources.login_html, h))
        case ("POST", "/console/login"):
            guard sameOrigin else { return respond(forbidden) }
            let given = (try? JSONSerialization.jsonObject(with: Data(body))) as? [String: Any]
            guard let k = given?["key"] as? String, config.api.keys.reduce(false, { constantTimeEquals(k, $1) || $0 }) else {
                return respond(.json(.unauthorized, Envelope.error(.unauthorized, message: "wrong key")))
            }
            let session = ConsoleSessions.shared.create(now: now)
            respond(HTTPResponse(status: HTTPStatus(rawValue: 204), headers: [consoleSetCookie(session.id, maxAge: Int(ConsoleSessions.lifetimeMs / 1000))]))
        case ("POST", "/console/logout"):
            guard csrfOK, let sessionID else { return respond(csrf == nil ? unauthorized : forbidden) }
            ConsoleSessions.shared.remove(sessionID)
            respond(HTTPResponse(status: HTTPStatus(rawValue: 204), headers: [consoleSetCookie("", maxAge: 0)]))
        case ("GET", "/console/session"):
            guard let csrf else { return respond(unauthorized) }
            let json =
                "{\"csrf\":\"\(csrf)\",\"ws\":\(loop.node.jsonString(consoleWebSocketURL(h))),\"node\":\(loop.node.jsonString(config.nodeID)),"
                + "\"auth\":\(loop.node.auth.requiresToken)}"
            respond(.json(.ok, Array(json.utf8)))
        case ("POST", "/console/ticket"):
            // A one-use token for the page's WebSocket when authentication is on (ConsoleTickets.swift).
            guard csrfOK else { return respond(csrf == nil ? unauthorized : forbidden) }
            let ticket = ConsoleTickets.shared.issue(now: now)
            respond(.json(.ok, Array("{\"token\":\"\(ticket)\",\"expires_in_ms\":\(ConsoleTickets.redeemWindowMs)}".utf8)))
        case ("GET", let path) where path.hasPrefix("/console/assets/"):
            guard let (bytes, type) = Self.consoleAsset(String(path.dropFirst("/console/assets/".count))) else {
                return respond(HTTPResponse(error: HTTPError(status: .notFound, reason: "not found", headers: [])))
            }
            respond(HTTPResponse(status: .ok, headers: [HTTPHeader("Content-Type", type)], body: bytes))
        case (let method, let path) where path.hasPrefix("/console/api/"):
            guard csrf != nil else { return respond(unauthorized) }
            guard method == "GET" || method == "HEAD" || csrfOK else { return respond(forbidden) }
            // Answered exactly as the API would answer a backend holding the key.
            var headers = HTTPHeaders(h.headers.filter { !["authorization", "cookie", "x-csrf-token"].contains($0.name.lowercased()) })
            headers.append(name: "Authorization", value: "Bearer \(key)")
            route(HTTPRequestHead(method: method, target: "/api/" + h.target.dropFirst("/console/api/".count), headers: headers))
        default:
            respond(HTTPResponse(error: HTTPError(status: .notFound, reason: "not found", headers: [])))
        }
    }

    /// An embedded file and its Content-Type, by name; nil for any other name.
    static func consoleAsset(_ name: String) -> ([UInt8], String)? {
        switch name {
        case "console.js": (PackageResources.console_js, "text/javascript; charset=utf-8")
        case "login.js": (PackageResources.login_js, "text/javascript; charset=utf-8")
        case "switchboard.js": (PackageResources.switchboard_js, "text/javascript; charset=utf-8")
        case "console.css": (PackageResources.console_css, "text/css; charset=utf-8")
        default: nil
        }
    }

    /// An HTML page with the console's Content-Security-Policy: scripts, styles and fetches from this
    /// origin only, plus the WebSocket URL the page tails rooms on; no inline script or style, no frames,
    /// no forms posting elsewhere.
    func consolePage(_ html: [UInt8], _ h: HTTPRequestHead) -> HTTPResponse {
        HTTPResponse(
            status: .ok,
            headers: [
                HTTPHeader("Content-Type", "text/html; charset=utf-8"),
                HTTPHeader("Content-Security-Policy", Self.consoleCSP(webSocket: consoleWebSocketURL(h))),
                HTTPHeader("X-Frame-Options", "DENY"),
                HTTPHeader("Referrer-Policy", "no-referrer")
            ], body: html)
    }

    static func consoleCSP(webSocket: String) -> String {
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self' \(webSocket); "
            + "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
    }

    /// `Set-Cookie` for the session: HttpOnly, SameSite=Strict, path /console, Secure when the admin port is HTTPS.
    func consoleSetCookie(_ value: String, maxAge: Int) -> HTTPHeader {
        HTTPHeader(
            "Set-Cookie", "\(Self.consoleCookie)=\(value); Path=/console; Max-Age=\(maxAge); HttpOnly; SameSite=Strict\(loop.adminTLS != nil ? "; Secure" : "")"
        )
    }

    /// The public WebSocket URL as this browser reaches the node: the listener's address, or, when it
    /// listens on every interface, the host name the browser used for the admin port (letters, digits,
    /// '.', '-', or a bracketed IPv6 address; anything else falls back to 127.0.0.1).
    func consoleWebSocketURL(_ h: HTTPRequestHead) -> String {
        let config = loop.node.config
        var host = config.host
        if host == "0.0.0.0" || host == "::" || host.isEmpty {
            let given = h.headers["Host"] ?? ""
            let name = given.hasPrefix("[") ? String(given.prefix { $0 != "]" }) + "]" : String(given.prefix { $0 != ":" })
            let allowed = name.utf8.allSatisfy { c in
                (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A) || c == 0x2E || c == 0x2D || c == 0x3A || c == 0x5B
                    || c == 0x5D
            }
            host = !name.isEmpty && allowed ? name : "127.0.0.1"
        } else if host.contains(":") {
            host = "[\(host)]"
        }
        return "\(config.tls != nil ? "wss" : "ws")://\(host):\(config.port)\(config.wsPath)"
    }

    /// A state-changing request from a browser carries `Origin`; it must be this admin port's own
    /// (scheme, Host). Requests without one (curl, backends) pass: the cookie and token still apply.
    func consoleSameOrigin(_ h: HTTPRequestHead) -> Bool {
        guard let origin = h.headers["Origin"] else { return true }
        return origin == "\(loop.adminTLS != nil ? "https" : "http")://\(h.headers["Host"] ?? "")"
    }

    /// The value of cookie `name` from the `Cookie` header(s) (RFC 6265 §5.4: "a=b; c=d"), nil when absent.
    static func cookie(_ name: String, in h: HTTPRequestHead) -> String? {
        for header in h.headers.values("Cookie") {
            for pair in header.split(separator: ";") {
                let kv = pair.trimmingCharacters(in: .whitespaces)
                if kv.hasPrefix(name + "=") { return String(kv.dropFirst(name.count + 1)) }
            }
        }
        return nil
    }
}
