/// The response-head parser (used by clients: the reference client, the auth backend call, the bench, tests).
public typealias HTTPResponseHeadParser = IncrementalHTTPHeadParser<HTTPResponseGrammar>

/// status-line = HTTP-version SP 3DIGIT SP [reason-phrase] (RFC 9112 §4); a missing reason
/// phrase (and its space) is tolerated. Limits as for ``HTTPHeadParser``: head bytes
/// (default 16 KiB) and header count (default 100) -> 431; malformed -> 400.
public enum HTTPResponseGrammar: HTTPHeadGrammar {
    public static var defaultMaxHeadBytes: Int { 16384 }
    public static func checkFirstByte(_ byte: UInt8) throws(HTTPError) {}
    public static func checkStartLine(_ line: UnsafeRawBufferPointer) throws(HTTPError) {}

    public static func parse(_ head: UnsafeRawBufferPointer, maxHeaderCount: Int) throws(HTTPError) -> HTTPResponseHead {
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
