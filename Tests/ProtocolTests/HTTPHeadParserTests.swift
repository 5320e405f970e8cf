import Testing

@testable import Protocol

@Suite struct HTTPHeadParserTests {
    static let upgrade =
        "GET /ws?room=lobby HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        + "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"

    /// Feeds `pieces`; returns the head, the absolute offset where it ended, and how many feeds it took.
    func run(_ pieces: [[UInt8]], parser: HTTPHeadParser = HTTPHeadParser()) throws(HTTPError) -> (HTTPRequestHead, end: Int)? {
        var parser = parser
        var offset = 0
        for piece in pieces {
            let result = try piece.withUnsafeBytes { raw in Result { () throws(HTTPError) in try parser.feed(raw) } }.get()
            if case .complete(let head, let consumed) = result { return (head, offset + consumed) }
            offset += piece.count
        }
        return nil
    }

    @Test func bytesThatCannotStartARequestLineAre400AtOnce() {
        // A TLS ClientHello (record type 0x16) sent to the plain port, and binary noise: no blank line will come.
        // And complete first lines that are no request line, though the head itself is not complete.
        for bytes: [UInt8] in [
            [0x16, 0x03, 0x01, 0x02, 0x00, 0x01], [0x00, 0xFF], Array("\r\n\u{01}GET".utf8),
            Array("SSH-2.0-OpenSSH_9.0\r\n".utf8), Array("HELLO\r\n".utf8), Array("GET /ws\r\nHost: a\r\n".utf8),
            Array("GET\n".utf8)
        ] {
            do {
                _ = try run([bytes])
                Issue.record("\(bytes) was not refused")
            } catch {
                #expect(error.status == .badRequest)
            }
        }
        do {
            let partial = try run([Array("\r\nGE".utf8)])
            #expect(partial == nil, "a request split after its first letters still waits")
            let firstLine = try run([Array("GET /ws HTTP/1.1\r\nHost: a\r\n".utf8)])
            #expect(firstLine == nil, "a valid first line waits for the rest of the head")
        } catch {
            Issue.record("a valid beginning was refused: \(error)")
        }
    }

    @Test func aBadStartIsRefusedInEverySplitNotOnlyWhole() {
        // Found by Fuzz/FuzzAdminHTTP.swift: fed byte at a time, a bad request line used to wait for the end of
        // the head (or the timeout) because the early checks only looked at the feed that started the head.
        let inputs: [[UInt8]] = [
            [0x16, 0x03, 0x01, 0x02, 0x00, 0x01], Array("\r\n\u{01}GET".utf8), Array("SSH-2.0-OpenSSH_9.0\r\n".utf8),
            Array("HELLO\r\n".utf8), Array("GET /ws\r\nHost: a\r\n".utf8), Array("GET\n".utf8),
            Array("GET /ncodi/1.1\r\nH:ost: h\r/1.1\r\n\rd: x\r\n\r\0\0\n".utf8)
        ]
        for bytes in inputs {
            for pieces in allSplits(bytes) {
                do {
                    _ = try run(pieces)
                    Issue.record("\(pieces) was not refused")
                } catch {
                    #expect(error.status == .badRequest, "\(pieces)")
                }
            }
        }
        // A valid start still waits in every split.
        for pieces in allSplits(Array("\r\nGET /ws HTTP/1.1\r\nHost: a\r\n".utf8)) {
            do {
                #expect(try run(pieces) == nil, "\(pieces)")
            } catch {
                Issue.record("\(pieces) was refused: \(error)")
            }
        }
    }

    @Test func parsesAnUpgradeRequest() throws {
        let head = try parseRequest(Self.upgrade)
        #expect(head.method == "GET")
        #expect(head.target == "/ws?room=lobby")
        #expect(head.path == "/ws")
        #expect(head.query == "room=lobby")
        #expect(head.versionMajor == 1 && head.versionMinor == 1)
        #expect(head.headers.count == 5)
        #expect(head.headers["host"] == "127.0.0.1:8080")
        #expect(head.headers["SEC-WEBSOCKET-KEY"] == "dGhlIHNhbXBsZSBub25jZQ==")
        #expect(Array(head.headers).first == HTTPHeader("Host", "127.0.0.1:8080"))
    }

    /// Every split point, one byte at a time, and pipelined frame bytes after the head.
    @Test func everySplitPointWithPipelinedBytes() throws {
        let trailer = FrameEncoder.frame(opcode: .text, payload: Array("hi".utf8), maskingKey: 1)
        let bytes = Array(Self.upgrade.utf8) + trailer
        let headLength = Self.upgrade.utf8.count
        for pieces in allSplits(bytes) {
            let result = try run(pieces)
            #expect(result?.end == headLength, "\(pieces.map(\.count).prefix(3))")
            #expect(result?.0.headers["Sec-WebSocket-Version"] == "13")
            #expect(result?.0.path == "/ws")
        }
    }

    @Test func bareLineFeedsAndLeadingBlankLines() throws {
        let head = try parseRequest("\r\n\nGET / HTTP/1.0\nHost: a\n\n")
        #expect(head.versionMinor == 0)
        #expect(head.headers["Host"] == "a")
        for pieces in allSplits(Array("\r\nGET / HTTP/1.1\r\nA: b\n\r\nrest".utf8)) {
            #expect(try run(pieces)?.end == 25)
        }
    }

    @Test func needsMoreUntilTheBlankLine() throws {
        #expect(try run([Array("GET / HTTP/1.1\r\nHost: a\r\n".utf8)]) == nil)
        #expect(try run([Array("GET / HTTP/1.1\r\nHost: a\r\n\r".utf8)]) == nil)
    }

    @Test func valuesAreTrimmed() throws {
        let head = try parseRequest("GET / HTTP/1.1\r\nX-A:   spaced \t \r\nX-B:\r\nX-C:v\r\n\r\n")
        #expect(head.headers["x-a"] == "spaced")
        #expect(head.headers["x-b"] == "")
        #expect(head.headers["x-c"] == "v")
    }

    @Test func parserIsReusableAfterAHead() throws {
        var parser = HTTPHeadParser()
        let two = Array("GET /a HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\n\r\n".utf8)
        try two.withUnsafeBytes { raw in
            guard case .complete(let first, let consumed) = try parser.feed(raw) else { Issue.record("first"); return }
            #expect(first.path == "/a")
            guard case .complete(let second, let rest) = try parser.feed(UnsafeRawBufferPointer(rebasing: raw[consumed...])) else {
                Issue.record("second"); return
            }
            #expect(second.path == "/b" && consumed + rest == raw.count)
        }
        #expect(parser.isIdle)
    }

    // MARK: limits -> 431

    @Test func headSizeLimit() throws {
        let base = "GET / HTTP/1.1\r\nX: "
        let fits = base + String(repeating: "a", count: 8192 - base.utf8.count - 4) + "\r\n\r\n"
        #expect(fits.utf8.count == 8192)
        #expect(try parseRequest(fits).headers["X"]?.utf8.count == 8192 - base.utf8.count - 4)
        let over = base + String(repeating: "a", count: 8192 - base.utf8.count - 3) + "\r\n\r\n"
        #expect(throws: HTTPError(status: .requestHeaderFieldsTooLarge, reason: "head too large")) { try parseRequest(over) }
    }

    /// The limit fires as bytes arrive, without waiting for the end of the head (slowloris, memory).
    @Test func headSizeLimitWithoutTerminator() {
        let endless = Array(("GET / HTTP/1.1\r\nX: " + String(repeating: "a", count: 9000)).utf8)
        for pieces in [[endless], stride(from: 0, to: endless.count, by: 1000).map { Array(endless[$0..<min($0 + 1000, endless.count)]) }] {
            #expect(throws: HTTPError.self) { try run(pieces) }
            do { _ = try run(pieces) } catch { #expect(error.status == .requestHeaderFieldsTooLarge) }
        }
    }

    @Test func headerCountLimit() throws {
        func request(_ count: Int) -> String {
            "GET / HTTP/1.1\r\n" + (0..<count).map { "H\($0): v\r\n" }.joined() + "\r\n"
        }
        #expect(try parseRequest(request(100)).headers.count == 100)
        #expect(throws: HTTPError(status: .requestHeaderFieldsTooLarge, reason: "too many header fields")) { try parseRequest(request(101)) }
        #expect(throws: HTTPError.self) { try parseRequest(request(3), maxHeaderCount: 2) }
        // Without the blank line too: counted as lines arrive.
        #expect(throws: HTTPError.self) { try run([Array(request(101).utf8.dropLast(2))]) }
    }

    // MARK: malformed -> 400

    @Test(arguments: [
        "GET / HTTP/1.1\r\nHost a\r\n\r\n",  // no colon
        "GET / HTTP/1.1\r\nHost : a\r\n\r\n",  // space before colon
        "GET / HTTP/1.1\r\n: a\r\n\r\n",  // empty name
        "GET / HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n",  // obs-fold
        "GET / HTTP/1.1\r\nHost: a\r\n\tfolded\r\n\r\n",  // obs-fold with tab
        "GET / HTTP/1.1\r\nHost: a\u{1}b\r\n\r\n",  // control character
        "GET / HTTP/1.1\r\nHost: a\rb\r\n\r\n",  // bare CR
        "GET / HTTP/1.1\r\nHo\u{7F}st: a\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\u{7F}\r\n\r\n",
        "GET / HTTP/12\r\n\r\n",  // bad version
        "GET / HTTP/1.10\r\n\r\n",
        "GET / http/1.1\r\n\r\n",
        "GET / HTTP/x.1\r\n\r\n",
        "GET /\r\n\r\n",  // HTTP/0.9 style
        "GET  / HTTP/1.1\r\n\r\n",  // double space
        "GET / HTTP/1.1 \r\n\r\n",  // trailing space
        "GET /a b HTTP/1.1\r\n\r\n",
        " GET / HTTP/1.1\r\n\r\n",
        "G(T / HTTP/1.1\r\n\r\n",  // non-token method
        "GET \u{1}/ HTTP/1.1\r\n\r\n",
        "GET /é HTTP/1.1\r\n\r\n"  // raw non-ASCII target
    ])
    func malformed(request: String) {
        #expect(performing: { try parseRequest(request) }, throws: { ($0 as? HTTPError)?.status == .badRequest })
    }

    @Test func obsTextInValuesIsKept() throws {
        #expect(try parseRequest("GET / HTTP/1.1\r\nX: café\r\n\r\n").headers["x"] == "café")
    }
}
