import Testing

@testable import Protocol

@Suite struct HTTPResponseTests {
    func text(_ response: HTTPResponse) -> String { String(decoding: response.serialize(), as: UTF8.self) }

    @Test func serializesWithHardeningHeaders() {
        let out = text(HTTPResponse(status: .notFound, headers: [HTTPHeader("X-Request-Id", "r1")], body: Array("nope\n".utf8)))
        #expect(
            out == "HTTP/1.1 404 Not Found\r\nX-Request-Id: r1\r\nX-Content-Type-Options: nosniff\r\nCache-Control: no-store\r\n"
                + "Content-Security-Policy: default-src 'none'\r\nConnection: close\r\nContent-Length: 5\r\n\r\nnope\n")
        #expect(!out.lowercased().contains("server:"))
    }

    @Test func errorResponse() {
        let error = HTTPError(status: .upgradeRequired, reason: "Upgrade Required", headers: [HTTPHeader("Sec-WebSocket-Version", "13")])
        let response = HTTPResponse(error: error)
        #expect(response.body == Array("Upgrade Required\n".utf8))
        let out = text(response)
        #expect(out.hasPrefix("HTTP/1.1 426 Upgrade Required\r\nSec-WebSocket-Version: 13\r\nContent-Type: text/plain; charset=utf-8\r\n"))
        #expect(out.hasSuffix("Content-Length: 17\r\n\r\nUpgrade Required\n"))
    }

    @Test func json() {
        let out = text(.json(.ok, Array(#"{"ok":true}"#.utf8)))
        #expect(out.contains("Content-Type: application/json\r\n"))
        #expect(out.hasSuffix("Content-Length: 11\r\n\r\n{\"ok\":true}"))
    }

    @Test func callerConnectionAndOverridesWin() {
        let out = text(
            HTTPResponse(
                status: .ok,
                headers: [
                    HTTPHeader("Connection", "keep-alive"), HTTPHeader("Cache-Control", "max-age=5"),
                    HTTPHeader("Content-Length", "999"), HTTPHeader("Server", "x")
                ]))
        #expect(out.contains("Connection: keep-alive\r\n") && !out.contains("Connection: close"))
        #expect(out.contains("Cache-Control: max-age=5\r\n") && !out.contains("no-store"))
        #expect(out.contains("Content-Length: 0\r\n") && !out.contains("999"))
        #expect(!out.contains("Server"))
    }

    @Test func noHeaderInjection() {
        let out = text(HTTPResponse(status: .ok, headers: [HTTPHeader("X-A", "a\r\nSet-Cookie: evil")]))
        #expect(out.contains("X-A: a  Set-Cookie: evil\r\n"))
    }

    @Test func noContentLengthOn1xxAnd204() {
        #expect(!text(HTTPResponse(status: HTTPStatus(rawValue: 204))).contains("Content-Length"))
        #expect(!text(HTTPResponse(status: .switchingProtocols)).contains("Content-Length"))
    }
}
