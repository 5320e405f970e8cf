#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The parsing code shared by ``HTTPHeadParser`` and ``HTTPResponseHeadParser``: finds the end of
/// a head in any byte split (buffering only when the head spans feeds), enforces the size and
/// line-count limits as bytes arrive, and parses header lines (RFC 9112 §2.2, §5).
struct HTTPHeadScanner: Sendable {
    let maxHeadBytes: Int
    let maxHeaderCount: Int
    /// Head bytes from earlier feeds; empty while a head fits in one input (the common case).
    private var buffer: [UInt8] = []
    /// Offsets below count from the first byte of the head (blank lines before it included).
    private var lineStart = 0
    private var headStart = 0
    private var sawStartLine = false
    private var headerLines = 0

    init(maxHeadBytes: Int, maxHeaderCount: Int) {
        self.maxHeadBytes = maxHeadBytes
        self.maxHeaderCount = maxHeaderCount
    }

    private mutating func reset() {
        self = HTTPHeadScanner(maxHeadBytes: maxHeadBytes, maxHeaderCount: maxHeaderCount)
    }

    static let tooLarge = HTTPError(status: .requestHeaderFieldsTooLarge, reason: "head too large")
    static let tooManyHeaders = HTTPError(status: .requestHeaderFieldsTooLarge, reason: "too many header fields")

    /// Scans `input`; once the empty line ending the head is seen, calls `parse` with the head
    /// (start line through the empty line) and returns its result with the number of bytes of
    /// `input` that belonged to the head. nil: need more bytes. The scanner is then ready for the
    /// next head; after a throw it is reset too. `startLine` sees the start line (without its CR LF) the moment
    /// its LF arrives, whatever the split, so a caller can refuse a bad one before the rest of the head comes.
    mutating func feed<Head>(
        _ input: UnsafeRawBufferPointer,
        startLine: (UnsafeRawBufferPointer) throws(HTTPError) -> Void = { _ in },
        parse: (UnsafeRawBufferPointer) throws(HTTPError) -> Head
    ) throws(HTTPError) -> (Head, consumed: Int)? {
        guard let inputBase = input.baseAddress, input.count > 0 else { return nil }
        let base = buffer.count
        var i = 0
        while i < input.count, let hit = memchr(inputBase + i, 0x0A, input.count - i) {
            let lf = UnsafeRawPointer(hit) - inputBase
            let absoluteLF = base + lf
            let length = absoluteLF - lineStart
            let firstByte = lineStart < base ? buffer[lineStart] : input[lineStart - base]
            if length == 0 || (length == 1 && firstByte == 0x0D) {
                if !sawStartLine {
                    // RFC 9112 §2.2: ignore empty lines before the start line.
                    headStart = absoluteLF + 1
                    lineStart = headStart
                    i = lf + 1
                    continue
                }
                let end = absoluteLF + 1
                guard end <= maxHeadBytes else { reset(); throw Self.tooLarge }
                let head: Head
                do throws(HTTPError) {
                    if base == 0 {
                        head = try parse(UnsafeRawBufferPointer(rebasing: input[headStart..<end]))
                    } else {
                        buffer.append(contentsOf: UnsafeRawBufferPointer(rebasing: input[0...lf]))
                        let start = headStart
                        // Array.withUnsafeBytes is untyped `rethrows`: carry the typed error out in a Result.
                        head = try buffer.withUnsafeBytes { all in
                            Result { () throws(HTTPError) in try parse(UnsafeRawBufferPointer(rebasing: all[start..<end])) }
                        }.get()
                    }
                } catch {
                    reset()
                    throw error
                }
                reset()
                return (head, lf + 1)
            }
            if sawStartLine {
                headerLines += 1
                if headerLines > maxHeaderCount { reset(); throw Self.tooManyHeaders }
            } else {
                sawStartLine = true
                do throws(HTTPError) {
                    try Self.withLine(buffer, input, base: base, from: lineStart, to: absoluteLF, startLine)
                } catch {
                    reset()
                    throw error
                }
            }
            lineStart = absoluteLF + 1
            i = lf + 1
        }
        // No end yet: any complete head would now exceed the limit, so fail before buffering more.
        guard base + input.count < maxHeadBytes else { reset(); throw Self.tooLarge }
        buffer.append(contentsOf: input)
        return nil
    }

    /// True when no bytes of a head are buffered.
    var isIdle: Bool { buffer.isEmpty }

    /// Calls `body` with the line `start..<lf` (absolute offsets; a CR before the LF dropped), copying only when
    /// the line spans the buffered bytes and this input.
    private static func withLine(
        _ buffer: [UInt8], _ input: UnsafeRawBufferPointer, base: Int, from start: Int, to lf: Int,
        _ body: (UnsafeRawBufferPointer) throws(HTTPError) -> Void
    ) throws(HTTPError) {
        if start >= base {
            var end = lf - base
            if end > start - base && input[end - 1] == 0x0D { end -= 1 }
            try body(UnsafeRawBufferPointer(rebasing: input[(start - base)..<end]))
            return
        }
        var line = Array(buffer[start...])
        line.append(contentsOf: UnsafeRawBufferPointer(rebasing: input[0..<(lf - base)]))
        if line.last == 0x0D { line.removeLast() }
        try line.withUnsafeBytes { raw in Result { () throws(HTTPError) in try body(raw) } }.get()
    }
}

/// Line-level parsing of a complete head (RFC 9112 §2.2, §5). Bare LF line ends are accepted;
/// a CR anywhere but before LF is a control character and rejected.
enum HTTPHeadSyntax {
    static func bad(_ reason: String) -> HTTPError { HTTPError(status: .badRequest, reason: reason) }

    /// The next line's content range (without CR LF) starting at `position`, which moves past the LF.
    @inline(__always)
    static func nextLine(_ head: UnsafeRawBufferPointer, _ position: inout Int) -> Range<Int> {
        let start = position
        var end = start
        if let base = head.baseAddress, let hit = memchr(base + start, 0x0A, head.count - start) {
            end = UnsafeRawPointer(hit) - base
            position = end + 1
        } else {
            end = head.count
            position = head.count
        }
        if end > start, head[end - 1] == 0x0D { end -= 1 }
        return start..<end
    }

    /// RFC 9110 §5.6.2 tchar.
    @inline(__always)
    static func isTokenChar(_ c: UInt8) -> Bool {
        switch c {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
            UInt8(ascii: "0")...UInt8(ascii: "9"):
            true
        case UInt8(ascii: "!"), UInt8(ascii: "#"), UInt8(ascii: "$"), UInt8(ascii: "%"), UInt8(ascii: "&"),
            UInt8(ascii: "'"), UInt8(ascii: "*"), UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: "."),
            UInt8(ascii: "^"), UInt8(ascii: "_"), UInt8(ascii: "`"), UInt8(ascii: "|"), UInt8(ascii: "~"):
            true
        default:
            false
        }
    }

    /// Field-value bytes (RFC 9110 §5.5): HTAB, SP, VCHAR, obs-text.
    @inline(__always)
    static func isFieldValueChar(_ c: UInt8) -> Bool {
        c == 0x09 || (c >= 0x20 && c != 0x7F)
    }

    static func string(_ head: UnsafeRawBufferPointer, _ range: Range<Int>) -> String {
        String(decoding: UnsafeRawBufferPointer(rebasing: head[range]), as: UTF8.self)
    }

    /// Names too long for Swift's inline small strings (> 15 bytes) that every upgrade carries:
    /// returning the literal saves an allocation each.
    static let wellKnownNames: [(bytes: [UInt8], name: String)] = [
        "Sec-WebSocket-Key", "Sec-WebSocket-Version", "Sec-WebSocket-Extensions", "Sec-WebSocket-Protocol",
        "sec-websocket-key", "sec-websocket-version", "sec-websocket-extensions", "sec-websocket-protocol",
        "Sec-WebSocket-Accept", "Accept-Encoding", "Accept-Language"
    ].map { (Array($0.utf8), $0) }

    @inline(__always)
    static func wellKnownName(_ bytes: UnsafeRawBufferPointer) -> String? {
        guard bytes.count > 15 else { return nil }
        for entry in wellKnownNames where entry.bytes.count == bytes.count && entry.bytes.elementsEqual(bytes) {
            return entry.name
        }
        return nil
    }

    /// Parses `HTTP/d.d` occupying exactly `range`; returns (major, minor).
    static func version(_ head: UnsafeRawBufferPointer, _ range: Range<Int>) throws(HTTPError) -> (Int, Int) {
        guard range.count == 8 else { throw bad("malformed HTTP version") }
        let s = range.lowerBound
        guard head[s] == UInt8(ascii: "H"), head[s + 1] == UInt8(ascii: "T"), head[s + 2] == UInt8(ascii: "T"),
            head[s + 3] == UInt8(ascii: "P"), head[s + 4] == UInt8(ascii: "/"), head[s + 6] == UInt8(ascii: "."),
            head[s + 5] &- 0x30 < 10, head[s + 7] &- 0x30 < 10
        else { throw bad("malformed HTTP version") }
        return (Int(head[s + 5] - 0x30), Int(head[s + 7] - 0x30))
    }

    /// Parses the header lines from `position` to the empty line.
    static func headers(_ head: UnsafeRawBufferPointer, from position: Int, maxCount: Int) throws(HTTPError) -> HTTPHeaders {
        var headers = HTTPHeaders()
        headers.storage.reserveCapacity(12)
        var position = position
        while position < head.count {
            let line = nextLine(head, &position)
            if line.isEmpty { break }
            let first = head[line.lowerBound]
            if first == 0x20 || first == 0x09 { throw bad("obsolete line folding") }
            var colon = line.lowerBound
            while colon < line.upperBound, isTokenChar(head[colon]) { colon += 1 }
            guard colon > line.lowerBound, colon < line.upperBound, head[colon] == UInt8(ascii: ":") else {
                throw bad("malformed header line")
            }
            var lo = colon + 1
            var hi = line.upperBound
            for j in lo..<hi where !isFieldValueChar(head[j]) { throw bad("control character in header value") }
            while lo < hi, head[lo] == 0x20 || head[lo] == 0x09 { lo += 1 }
            while hi > lo, head[hi - 1] == 0x20 || head[hi - 1] == 0x09 { hi -= 1 }
            guard headers.count < maxCount else { throw HTTPHeadScanner.tooManyHeaders }
            let name = UnsafeRawBufferPointer(rebasing: head[line.lowerBound..<colon])
            headers.storage.append(HTTPHeader(wellKnownName(name) ?? string(head, line.lowerBound..<colon), string(head, lo..<hi)))
        }
        return headers
    }
}
