import Testing

@testable import Protocol

@Suite struct HTTPResponseHeadParserTests {
    func parse(_ pieces: [[UInt8]]) throws(HTTPError) -> (HTTPResponseHead, end: Int)? {
        var parser = HTTPResponseHeadParser()
        var offset = 0
        for piece in pieces {
            let result = try piece.withUnsafeBytes { raw in Result { () throws(HTTPError) in try parser.feed(raw) } }.get()
            if case .complete(let head, let consumed) = result { return (head, offset + consumed) }
            offset += piece.count
        }
        return nil
    }

    @Test func parsesA101EverySplit() throws {
        let handshake = WebSocketHandshake(key: "dGhlIHNhbXBsZSBub25jZQ==")
        let response = handshake.response()
        let bytes = response + FrameEncoder.frame(opcode: .text, payload: Array("hello".utf8))
        for pieces in allSplits(bytes) {
            let result = try parse(pieces)
            #expect(result?.end == response.count)
            #expect(result?.0.status == 101)
            #expect(result?.0.reason == "Switching Protocols")
            #expect(result?.0.headers["sec-websocket-accept"] == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
        }
        #expect(try parse([response]).map { WebSocketHandshake.isValidServerResponse($0.0, forKey: "dGhlIHNhbXBsZSBub25jZQ==") } == true)
        #expect(try parse([response]).map { WebSocketHandshake.isValidServerResponse($0.0, forKey: "AAAAAAAAAAAAAAAAAAAAAA==") } == false)
    }

    @Test func statusLineVariants() throws {
        #expect(try parse([Array("HTTP/1.0 404 Not Found\r\n\r\n".utf8)])?.0.versionMinor == 0)
        #expect(try parse([Array("HTTP/1.1 204\r\n\r\n".utf8)])?.0.reason == "")
        #expect(try parse([Array("HTTP/1.1 200 \r\n\r\n".utf8)])?.0.status == 200)
        #expect(try parse([HTTPResponse(status: .upgradeRequired).serialize()])?.0.headers["Content-Length"] == "0")
    }

    @Test(arguments: [
        "HTTP/1.1 20 OK\r\n\r\n", "HTTP/1.1 2000 OK\r\n\r\n", "HTTP/2.0 200 OK\r\n\r\n", "HTP/1.1 200 OK\r\n\r\n",
        "HTTP/1.1 200 O\u{1}K\r\n\r\n", "HTTP/1.1 200 OK\r\nBad Header\r\n\r\n"
    ])
    func malformed(text: String) {
        #expect(performing: { try parse([Array(text.utf8)]) }, throws: { ($0 as? HTTPError)?.status == .badRequest })
    }

    @Test func limits() {
        var parser = HTTPResponseHeadParser(maxHeadBytes: 64)
        let bytes = Array(("HTTP/1.1 200 OK\r\nX: " + String(repeating: "a", count: 100)).utf8)
        #expect(throws: HTTPError.self) { _ = try bytes.withUnsafeBytes { try parser.feed($0) } }
    }
}
