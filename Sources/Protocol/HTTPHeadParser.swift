/// One kind of HTTP/1.1 message head (RFC 9112 §2): a request or a response. ``IncrementalHTTPHeadParser`` does
/// the buffering, limits and splitting for both; a grammar only parses a complete head and may reject
/// garbage early.
public protocol HTTPHeadGrammar: Sendable {
    associatedtype Head: Sendable
    /// The head-size limit when the caller names none.
    static var defaultMaxHeadBytes: Int { get }
    /// Parses a complete head (through its blank line). Throws 400 when malformed, 431 over `maxHeaderCount`.
    static func parse(_ head: UnsafeRawBufferPointer, maxHeaderCount: Int) throws(HTTPError) -> Head
    /// Checks the head's first byte (after empty lines) as soon as it arrives; throws 400 for garbage.
    static func checkFirstByte(_ byte: UInt8) throws(HTTPError)
    /// Checks the head's first line (without its line end) as soon as its LF arrives, in any split.
    static func checkStartLine(_ line: UnsafeRawBufferPointer) throws(HTTPError)
}

/// Incremental head parser: accepts any byte split. Limits: head size -> 431, header count (default 100)
/// -> 431; malformed lines (no colon, space before colon, obs-fold, bad version, control chars) -> 400.
/// Accepts CRLF and bare LF line ends.
///
/// Only the head is parsed: bodies are the caller's business. A head that fits in one `feed` is parsed
/// straight from the input with no copy; otherwise its bytes are buffered (at most `maxHeadBytes`).
/// After `.complete` the parser is ready for the next head (keep-alive); after a throw it must not be fed again.
public struct IncrementalHTTPHeadParser<Grammar: HTTPHeadGrammar>: Sendable {
    private var scanner: HTTPHeadScanner
    /// No byte of the current head but empty lines has been seen yet.
    private var awaitingFirstByte = true

    /// - Parameters:
    ///   - maxHeadBytes: bytes from the first byte through the blank line ending the head; more -> 431.
    ///   - maxHeaderCount: header lines; more -> 431.
    public init(maxHeadBytes: Int = Grammar.defaultMaxHeadBytes, maxHeaderCount: Int = 100) {
        scanner = HTTPHeadScanner(maxHeadBytes: maxHeadBytes, maxHeaderCount: maxHeaderCount)
    }

    /// The outcome of one ``feed(_:)``.
    public enum Result: Sendable {
        /// The head is not complete: feed more bytes.
        case needMore
        /// The head is complete; `consumed` bytes of this input belonged to it.
        case complete(Grammar.Head, consumed: Int)
    }

    /// `consumed` = how many bytes of THIS input belong to the head; `input[consumed...]` are bytes pipelined
    /// after the head (e.g. the first WebSocket frames) that the caller must hand to the frame decoder.
    /// - Throws: ``HTTPError`` with status 400 (malformed) or 431 (limits).
    public mutating func feed(_ input: UnsafeRawBufferPointer) throws(HTTPError) -> Result {
        // Garbage is answered at once instead of waiting for a blank line that never comes: the head's first
        // byte after any empty lines, in whichever feed it arrives, and its first line once its LF arrives.
        if awaitingFirstByte, let first = input.first(where: { $0 != 0x0D && $0 != 0x0A }) {
            try Grammar.checkFirstByte(first)
            awaitingFirstByte = false
        }
        let maxCount = scanner.maxHeaderCount
        guard
            let (head, consumed) = try scanner.feed(
                input,
                startLine: { (line) throws(HTTPError) in
                    try Grammar.checkStartLine(line)
                },
                parse: { (bytes) throws(HTTPError) in
                    try Grammar.parse(bytes, maxHeaderCount: maxCount)
                })
        else {
            return .needMore
        }
        awaitingFirstByte = true
        return .complete(head, consumed: consumed)
    }

    /// True when no partial head is buffered.
    public var isIdle: Bool { scanner.isIdle }
}

/// The request-head parser (RFC 9112 §2–§5) of the WebSocket upgrade and the admin port.
public typealias HTTPHeadParser = IncrementalHTTPHeadParser<HTTPRequestGrammar>

/// The request grammar (RFC 9112 §2–§5): request-line = method SP request-target SP HTTP-version, then
/// header lines; default head limit 8 KiB. Empty lines before the request line are skipped (§2.2); a first
/// byte that cannot start a method token is 400 at once.
public enum HTTPRequestGrammar: HTTPHeadGrammar {
    public static var defaultMaxHeadBytes: Int { 8192 }

    /// A request line starts with a method token: anything else (a TLS ClientHello, binary noise) is 400.
    public static func checkFirstByte(_ byte: UInt8) throws(HTTPError) {
        guard HTTPHeadSyntax.isTokenChar(byte) else { throw HTTPHeadSyntax.bad("not an HTTP request") }
    }

    /// A first line that is no request line (`SSH-2.0-…`, `HELLO`, `GET /ws` without a version) is 400 when
    /// its LF arrives, not at the handshake timeout.
    public static func checkStartLine(_ line: UnsafeRawBufferPointer) throws(HTTPError) {
        _ = try requestLine(line, 0..<line.count)
    }

    /// request-line = method SP request-target SP HTTP-version (RFC 9112 §3), then header lines.
    public static func parse(_ head: UnsafeRawBufferPointer, maxHeaderCount: Int) throws(HTTPError) -> HTTPRequestHead {
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
        -> (methodEnd: Int, targetStart: Int, targetEnd: Int, major: Int, minor: Int)
    {
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
