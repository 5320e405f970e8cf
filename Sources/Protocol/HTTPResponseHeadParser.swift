/// Same for a response head (used by clients: bench tool, tests). Shares the parsing code with HTTPHeadParser (no copy-paste).
///
/// status-line = HTTP-version SP 3DIGIT SP [reason-phrase] (RFC 9112 §4); a missing reason
/// phrase (and its space) is tolerated. Limits as for ``HTTPHeadParser``: head bytes
/// (default 16 KiB) and header count (default 100) -> 431; malformed -> 400.
public struct HTTPResponseHeadParser: Sendable {
    private var scanner: HTTPHeadScanner

    /// - Parameters:
    ///   - maxHeadBytes: bytes from the first byte through the blank line ending the head; more -> 431.
    ///   - maxHeaderCount: header lines; more -> 431.
    public init(maxHeadBytes: Int = 16384, maxHeaderCount: Int = 100) {
        scanner = HTTPHeadScanner(maxHeadBytes: maxHeadBytes, maxHeaderCount: maxHeaderCount)
    }

    /// The outcome of one ``feed(_:)``.
    public enum Result: Sendable {
        /// The head is not complete: feed more bytes.
        case needMore
        /// The head is complete; `consumed` bytes of this input belonged to it, the rest (e.g. the
        /// first WebSocket frames after a 101) belong to what follows.
        case complete(HTTPResponseHead, consumed: Int)
    }

    /// Feeds any split of bytes; see ``HTTPHeadParser/feed(_:)``.
    /// - Throws: ``HTTPError`` with status 400 (malformed) or 431 (limits).
    public mutating func feed(_ input: UnsafeRawBufferPointer) throws(HTTPError) -> Result {
        let maxCount = scanner.maxHeaderCount
        guard let (head, consumed) = try scanner.feed(input, parse: { (bytes) throws(HTTPError) in
            try Self.parse(bytes, maxHeaderCount: maxCount)
        }) else { return .needMore }
        return .complete(head, consumed: consumed)
    }

    static func parse(_ head: UnsafeRawBufferPointer, maxHeaderCount: Int) throws(HTTPError) -> HTTPResponseHead {
        typealias S = HTTPHeadSyntax
        var position = 0
        let line = S.nextLine(head, &position)
        let s = line.lowerBound
        guard line.count >= 12, head[s + 8] == 0x20,
              head[s + 9] &- 0x30 < 10, head[s + 10] &- 0x30 < 10, head[s + 11] &- 0x30 < 10,
              line.count == 12 || head[s + 12] == 0x20
        else { throw S.bad("malformed status line") }
        let (major, minor) = try S.version(head, s..<(s + 8))
        guard major == 1 else { throw S.bad("unsupported HTTP version") }
        let status = Int(head[s + 9] - 0x30) * 100 + Int(head[s + 10] - 0x30) * 10 + Int(head[s + 11] - 0x30)
        let reasonRange = min(s + 13, line.upperBound)..<line.upperBound
        for j in reasonRange where !S.isFieldValueChar(head[j]) { throw S.bad("control character in reason phrase") }
        let headers = try S.headers(head, from: position, maxCount: maxHeaderCount)
        return HTTPResponseHead(status: status, reason: S.string(head, reasonRange), versionMinor: minor, headers: headers)
    }
}
