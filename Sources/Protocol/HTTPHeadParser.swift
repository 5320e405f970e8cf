/// Incremental request-head parser: accepts any byte split. Limits: head size (default 8 KiB) -> 431,
/// header count (default 100) -> 431; malformed request line / header line (no colon, space before colon,
/// obs-fold, bad version, control chars) -> 400. Accepts CRLF and bare LF line ends.
///
/// RFC 9112 §2–§5. Empty lines before the request line are skipped (§2.2); a first byte that cannot
/// start a method token is 400 at once. Only the head is
/// parsed: bodies are the caller's business. A head that fits in one `feed` is parsed straight
/// from the input with no copy; otherwise its bytes are buffered (at most `maxHeadBytes`).
/// After `.complete` the parser is ready for the next head (keep-alive); after a throw it must
/// not be fed again.
public struct HTTPHeadParser: Sendable {
    private var scanner: HTTPHeadScanner
    /// No byte of the current head but empty lines has been seen yet.
    private var awaitingFirstByte = true

    /// - Parameters:
    ///   - maxHeadBytes: bytes from the first byte through the blank line ending the head; more -> 431.
    ///   - maxHeaderCount: header lines; more -> 431.
    public init(maxHeadBytes: Int = 8192, maxHeaderCount: Int = 100) {
        scanner = HTTPHeadScanner(maxHeadBytes: maxHeadBytes, maxHeaderCount: maxHeaderCount)
    }

    /// The outcome of one ``feed(_:)``.
    public enum Result: Sendable {
        /// The head is not complete: feed more bytes.
        case needMore
        /// The head is complete; `consumed` bytes of this input belonged to it.
        case complete(HTTPRequestHead, consumed: Int)
    }

    /// `consumed` = how many bytes of THIS input belong to the head; `input[consumed...]` are bytes pipelined
    /// after the head (e.g. the first WebSocket frames) that the caller must hand to the frame decoder.
    /// - Throws: ``HTTPError`` with status 400 (malformed) or 431 (limits).
    public mutating func feed(_ input: UnsafeRawBufferPointer) throws(HTTPError) -> Result {
        // A request line starts with a method token: anything else (a TLS ClientHello, binary noise) is
        // answered at once instead of waiting for a blank line that never comes. Checked on the head's first
        // byte after any empty lines, in whichever feed it arrives.
        if awaitingFirstByte, let first = input.first(where: { $0 != 0x0D && $0 != 0x0A }) {
            guard HTTPHeadSyntax.isTokenChar(first) else { throw HTTPHeadSyntax.bad("not an HTTP request") }
            awaitingFirstByte = false
        }
        let maxCount = scanner.maxHeaderCount
        // The head may not be complete, but its first line may be: a line that is no request line
        // (`SSH-2.0-…`, `HELLO`, `GET /ws` without a version) is answered when its LF arrives, not at the timeout.
        guard let (head, consumed) = try scanner.feed(input, startLine: { (line) throws(HTTPError) in
            _ = try Self.requestLine(line, 0..<line.count)
        }, parse: { (bytes) throws(HTTPError) in
            try Self.parse(bytes, maxHeaderCount: maxCount)
        }) else {
            return .needMore
        }
        awaitingFirstByte = true
        return .complete(head, consumed: consumed)
    }

    /// True when no partial head is buffered.
    public var isIdle: Bool { scanner.isIdle }

    /// request-line = method SP request-target SP HTTP-version (RFC 9112 §3), then header lines.
    static func parse(_ head: UnsafeRawBufferPointer, maxHeaderCount: Int) throws(HTTPError) -> HTTPRequestHead {
        typealias S = HTTPHeadSyntax
        var position = 0
        let line = S.nextLine(head, &position)
        let (methodEnd, targetStart, targetEnd, major, minor) = try requestLine(head, line)
        let headers = try S.headers(head, from: position, maxCount: maxHeaderCount)
        var query: String?
        var pathEnd = targetEnd
        for j in targetStart..<targetEnd where head[j] == UInt8(ascii: "?") {
            pathEnd = j
            query = S.string(head, (j + 1)..<targetEnd)
            break
        }
        let target = S.string(head, targetStart..<targetEnd)
        return HTTPRequestHead(
            method: S.string(head, line.lowerBound..<methodEnd), target: target,
            path: query == nil ? target : S.string(head, targetStart..<pathEnd), query: query,
            versionMajor: major, versionMinor: minor, headers: headers)
    }

    /// Checks `line` (without CR LF) as method SP request-target SP HTTP-version; returns where the
    /// method ends, the target's bounds and the version. Throws 400 when it is not one.
    static func requestLine(_ head: UnsafeRawBufferPointer, _ line: Range<Int>) throws(HTTPError)
        -> (methodEnd: Int, targetStart: Int, targetEnd: Int, major: Int, minor: Int) {
        typealias S = HTTPHeadSyntax
        var i = line.lowerBound
        while i < line.upperBound, S.isTokenChar(head[i]) { i += 1 }
        let methodEnd = i
        guard methodEnd > line.lowerBound, i < line.upperBound, head[i] == 0x20 else {
            throw S.bad("malformed request line")
        }
        i += 1
        let targetStart = i
        while i < line.upperBound, head[i] > 0x20, head[i] < 0x7F { i += 1 }
        let targetEnd = i
        guard targetEnd > targetStart, i < line.upperBound, head[i] == 0x20 else {
            throw S.bad("malformed request line")
        }
        let (major, minor) = try S.version(head, (i + 1)..<line.upperBound)
        return (methodEnd, targetStart, targetEnd, major, minor)
    }
}
