import Testing

@testable import Protocol

@Suite struct WebSocketHandshakeTests {
    static let key = "dGhlIHNhbXBsZSBub25jZQ=="

    func request(method: String = "GET", version: String = "HTTP/1.1", _ lines: [String]) -> String {
        "\(method) /ws \(version)\r\n" + lines.map { $0 + "\r\n" }.joined() + "\r\n"
    }

    static let standard = [
        "Host: 127.0.0.1:8080", "Upgrade: websocket", "Connection: Upgrade",
        "Sec-WebSocket-Key: \(key)", "Sec-WebSocket-Version: 13"
    ]

    func validate(_ text: String, subprotocols: [String] = []) throws(HTTPError) -> WebSocketHandshake {
        try WebSocketHandshake.validate(try parseRequest(text), supportedSubprotocols: subprotocols)
    }

    func error(_ text: String) -> HTTPError? {
        do { _ = try validate(text); return nil } catch { return error }
    }

    /// RFC 6455 §1.3.
    @Test func acceptValueExample() {
        #expect(WebSocketHandshake.acceptValue(forKey: "dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
    }

    @Test func validUpgradeAndResponse() throws {
        let handshake = try validate(request(Self.standard))
        #expect(handshake.key == Self.key)
        #expect(handshake.accept == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
        #expect(handshake.subprotocol == nil)
        #expect(
            String(decoding: handshake.response(), as: UTF8.self)
                == "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                + "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n")
        #expect(
            String(decoding: handshake.response(extraHeaders: [HTTPHeader("X-Node", "n1")]), as: UTF8.self)
                .hasSuffix("xOo=\r\nX-Node: n1\r\n\r\n"))
    }

    /// Cases C07 and C08.
    @Test func tokenListsAndCase() throws {
        var lines = Self.standard
        lines[2] = "Connection: keep-alive, Upgrade"
        #expect(try validate(request(lines)).accept == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
        let lower = ["host: h", "upgrade: WebSocket", "connection: upgrade", "sec-websocket-key: \(Self.key)", "sec-websocket-version: 13"]
        #expect(try validate(request(lower)).accept == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
        let upper = ["HOST: h", "UPGRADE: WEBSOCKET", "CONNECTION: UPGRADE", "SEC-WEBSOCKET-KEY: \(Self.key)", "SEC-WEBSOCKET-VERSION: 13"]
        #expect(try validate(request(upper)).accept == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
    }

    @Test func methodMustBeGet() {
        let e = error(request(method: "POST", Self.standard))
        #expect(e?.status == .methodNotAllowed && e?.headers == [HTTPHeader("Allow", "GET")])
    }

    @Test func versionMustBe11OrLater() throws {
        #expect(error(request(version: "HTTP/1.0", Self.standard))?.status == .badRequest)
        #expect(try validate(request(version: "HTTP/2.0", Self.standard)).key == Self.key)
    }

    /// A plain GET on the WebSocket path.
    @Test func plainGetGets426() {
        let e = error(request(["Host: h"]))
        #expect(e?.status == .upgradeRequired)
        #expect(e?.reason == "Upgrade Required")
        #expect(e?.headers == [HTTPHeader("Upgrade", "websocket"), HTTPHeader("Connection", "Upgrade"), HTTPHeader("Sec-WebSocket-Version", "13")])
        var wrong = Self.standard
        wrong[1] = "Upgrade: h2c"
        #expect(error(request(wrong))?.status == .upgradeRequired)
    }

    @Test func missingHost() {
        #expect(error(request(Array(Self.standard.dropFirst())))?.status == .badRequest)
    }

    @Test func connectionWithoutUpgrade() {
        var lines = Self.standard
        lines[2] = "Connection: keep-alive"
        #expect(error(request(lines))?.status == .badRequest)
        lines.remove(at: 2)
        #expect(error(request(lines))?.status == .badRequest)
    }

    /// Cases C10.
    @Test(arguments: ["12", "99", "8", "13, 8", ""])
    func unsupportedVersion(version: String) {
        var lines = Self.standard
        lines[4] = "Sec-WebSocket-Version: \(version)"
        let e = error(request(lines))
        #expect(e?.status == .upgradeRequired)
        #expect(e?.headers == [HTTPHeader("Sec-WebSocket-Version", "13")])
    }

    @Test func missingVersion() {
        #expect(error(request(Array(Self.standard.dropLast())))?.status == .badRequest)
    }

    @Test(arguments: [
        "", "not base64!!!!!!!!!!!!!!", "AAAAAAAAAAAAAAAAAAAA", "AAAAAAAAAAAAAAAAAAAA==",  // 15 bytes
        "AAAAAAAAAAAAAAAAAAAAAAAA", "AAAAAAAAAAAAAAAAAAAAAAA=", "AAAAAAAAAAAAAAAAAAAAAAAAAAAA"
    ])
    func badKeys(key: String) {
        var lines = Self.standard
        lines[3] = "Sec-WebSocket-Key: \(key)"
        #expect(error(request(lines))?.status == .badRequest, "\(key)")
    }

    @Test func keyMustAppearOnce() {
        #expect(error(request(Self.standard + ["Sec-WebSocket-Key: \(Self.key)"]))?.status == .badRequest)
        #expect(error(request(Self.standard.filter { !$0.hasPrefix("Sec-WebSocket-Key") }))?.status == .badRequest)
    }

    @Test func checksRunInOrder() {
        // POST with nothing else: 405 comes first.
        #expect(error("POST /ws HTTP/1.0\r\n\r\n")?.status == .methodNotAllowed)
        // GET HTTP/1.0 without Upgrade: the version check comes before Upgrade.
        #expect(error("GET /ws HTTP/1.0\r\n\r\n")?.status == .badRequest)
        // Upgrade present, no Host and a bad version: Host first.
        #expect(error(request(["Upgrade: websocket", "Sec-WebSocket-Version: 12"]))?.reason == "missing Host header")
    }

    @Test func subprotocolSelection() throws {
        let offered = request(Self.standard + ["Sec-WebSocket-Protocol: chat.v2, chat.v1", "Sec-WebSocket-Protocol: json"])
        #expect(try validate(offered, subprotocols: ["chat.v1", "chat.v2"]).subprotocol == "chat.v2")
        #expect(try validate(offered, subprotocols: ["json"]).subprotocol == "json")
        #expect(try validate(offered, subprotocols: ["xml"]).subprotocol == nil)
        #expect(try validate(offered).subprotocol == nil)
        #expect(try validate(offered, subprotocols: ["CHAT.V1"]).subprotocol == nil)
        let handshake = try validate(offered, subprotocols: ["chat.v1"])
        #expect(String(decoding: handshake.response(), as: UTF8.self).contains("\r\nSec-WebSocket-Protocol: chat.v1\r\n"))
    }

    @Test func clientRequestRoundTrip() throws {
        let (bytes, key) = WebSocketHandshake.clientRequest(host: "localhost:8080", path: "/ws?x=1", headers: [HTTPHeader("X-A", "b")])
        let head = try parseRequest(String(decoding: bytes, as: UTF8.self))
        #expect(head.path == "/ws" && head.queryParameter("x") == "1")
        #expect(head.headers["X-A"] == "b")
        let handshake = try WebSocketHandshake.validate(head)
        #expect(handshake.key == key)
        #expect(WebSocketHandshake.clientRequest(host: "h", path: "/").key != key)
    }
}
