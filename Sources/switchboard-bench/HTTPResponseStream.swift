import Protocol

/// Splits the byte stream of one keep-alive HTTP/1.1 connection into its responses (RFC 9112 §6, §7.1):
/// what the bench's HTTP publisher reads back from nginx + nchan, with many requests pipelined.
///
/// A value type fed bytes in any split; each complete response is reported once, in order. Heads go through
/// `HTTPResponseHeadParser` (at most 16 KiB each); bodies are framed by `Content-Length` or
/// `Transfer-Encoding: chunked` and skipped, never buffered, so memory stays bounded whatever the peer sends.
/// Interim `1xx` responses are skipped; `204` and `304` have no body. A response framed only by the end of
/// the connection cannot be followed by another and is refused (`Failure.unframedBody`). After a throw the
/// stream is dead: every later `feed` throws the same failure.
struct HTTPResponseStream: Sendable {
    /// One complete response.
    struct Response: Sendable, Equatable {
        /// The 3-digit status, e.g. 201.
        var status: Int
        /// Body bytes (decoded length for a chunked body).
        var bodyBytes: Int
        /// The server will close after this response (`Connection: close`, or HTTP/1.0 without keep-alive).
        var closes: Bool
    }

    /// Why the stream cannot be read further.
    enum Failure: Error, Sendable, Equatable {
        /// The head is malformed or over its limits (status 400 or 431 of `HTTPError`, with its reason).
        case badHead(Int, String)
        /// `Content-Length` is not a decimal number up to `maxBodyBytes`, or is sent twice with different values.
        case badContentLength
        /// Neither `Content-Length` nor chunked framing: the body would run to the end of the connection.
        case unframedBody
        /// A malformed chunk-size line, a chunk not followed by CRLF, or a chunk/trailer over its limit.
        case badChunk
    }

    private enum State: Sendable, Equatable {
        case head
        /// Body bytes still to skip (`Content-Length`).
        case fixed(Int)
        /// Hex digits of a chunk size so far (`digits` counts them), `inExtension` after a `;`, `sawCR` after CR.
        case chunkSize(size: Int, digits: Int, inExtension: Bool, sawCR: Bool, lineBytes: Int)
        /// Chunk data still to skip.
        case chunkData(Int)
        /// The CRLF after a chunk's data (`sawCR` once its CR came).
        case chunkEnd(sawCR: Bool)
        /// Trailer section after the last chunk: `lineBytes` of the current line, `sawCR` after its CR.
        case trailer(lineBytes: Int, sawCR: Bool, totalBytes: Int)
        case failed(Failure)
    }

    /// Largest body accepted (bytes): a publish response is ~100 bytes; this only bounds a broken peer's framing.
    let maxBodyBytes: Int
    private var head = HTTPResponseHeadParser()
    private var state = State.head
    private var current = Response(status: 0, bodyBytes: 0, closes: false)

    /// A stream expecting a response head first; bodies over `maxBodyBytes` fail.
    init(maxBodyBytes: Int = 1 << 20) {
        self.maxBodyBytes = maxBodyBytes
    }

    /// Consumes `input` and calls `onResponse` for each response it completes.
    /// - Throws: `Failure` (then and on every later call).
    mutating func feed(_ input: UnsafeRawBufferPointer, _ onResponse: (Response) -> Void) throws(Failure) {
        var i = 0
        while true {
            switch state {
            case .failed(let f):
                throw f
            case .head:
                guard i < input.count else { return }
                let rest = UnsafeRawBufferPointer(rebasing: input[i...])
                let result: HTTPResponseHeadParser.Result
                do {
                    result = try head.feed(rest)
                } catch {
                    return try fail(.badHead(Int(error.status.rawValue), error.reason))
                }
                guard case .complete(let h, let consumed) = result else { return }
                i += consumed
                try begin(h)
                if case .head = state { if current.status >= 200 { onResponse(current) } }
            case .fixed(let n):
                let take = min(n, input.count - i)
                i += take
                current.bodyBytes += take
                guard take == n else {
                    state = .fixed(n - take)
                    return
                }
                state = .head
                onResponse(current)
            case .chunkData(let n):
                let take = min(n, input.count - i)
                i += take
                guard take == n else {
                    state = .chunkData(n - take)
                    return
                }
                state = .chunkEnd(sawCR: false)
            case .chunkSize, .chunkEnd, .trailer:
                guard i < input.count else { return }
                if try chunkFraming(input[i]) { onResponse(current) }
                i += 1
            }
        }
    }

    /// Sets up body framing for head `h` (RFC 9112 §6.3).
    private mutating func begin(_ h: HTTPResponseHead) throws(Failure) {
        let connection = h.headers["Connection"]?.lowercased() ?? ""
        let closes = connection.contains("close") || (h.versionMinor == 0 && !connection.contains("keep-alive"))
        current = Response(status: h.status, bodyBytes: 0, closes: closes)
        if h.status < 200 || h.status == 204 || h.status == 304 {
            state = .head
            return
        }
        if h.headers.containsToken("chunked", in: "Transfer-Encoding") {
            state = .chunkSize(size: 0, digits: 0, inExtension: false, sawCR: false, lineBytes: 0)
            return
        }
        guard let text = h.headers["Content-Length"] else { return try fail(.unframedBody) }
        // A repeated field arrives joined with commas (RFC 9110 §8.6: equal values may be folded to one).
        let values = text.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingSpaces }
        guard let first = values.first, values.allSatisfy({ $0 == first }), let n = HTTPHeaders.contentLength(String(first)), n <= maxBodyBytes
        else { return try fail(.badContentLength) }
        state = n == 0 ? .head : .fixed(n)
    }

    /// One byte of chunked framing (chunk-size lines, the CRLF after data, trailers); true when it ends the body.
    private mutating func chunkFraming(_ b: UInt8) throws(Failure) -> Bool {
        switch state {
        case .chunkSize(let size, let digits, let inExtension, let sawCR, let lineBytes):
            guard lineBytes < 1024 else { return try fail(.badChunk) }
            if b == 0x0A {
                guard digits > 0 else { return try fail(.badChunk) }
                if size == 0 {
                    state = .trailer(lineBytes: 0, sawCR: false, totalBytes: 0)
                } else {
                    current.bodyBytes += size
                    guard current.bodyBytes <= maxBodyBytes else { return try fail(.badChunk) }
                    state = .chunkData(size)
                }
                return false
            }
            guard !sawCR else { return try fail(.badChunk) }
            var next = (size: size, digits: digits, inExtension: inExtension, sawCR: b == 0x0D)
            if b != 0x0D && !inExtension {
                if let v = hexValue(b) {
                    guard digits < 15 else { return try fail(.badChunk) }
                    next.size = size << 4 | Int(v)
                    next.digits += 1
                } else if b == UInt8(ascii: ";") || b == 0x20 || b == 0x09 {
                    next.inExtension = true
                } else {
                    return try fail(.badChunk)
                }
            }
            state = .chunkSize(size: next.size, digits: next.digits, inExtension: next.inExtension, sawCR: next.sawCR, lineBytes: lineBytes + 1)
            return false
        case .chunkEnd(let sawCR):
            if b == 0x0A {
                state = .chunkSize(size: 0, digits: 0, inExtension: false, sawCR: false, lineBytes: 0)
            } else if b == 0x0D && !sawCR {
                state = .chunkEnd(sawCR: true)
            } else {
                return try fail(.badChunk)
            }
            return false
        case .trailer(let lineBytes, let sawCR, let totalBytes):
            guard totalBytes < 16384 else { return try fail(.badChunk) }
            if b == 0x0A {
                if lineBytes == 0 {
                    state = .head
                    return true
                }
                state = .trailer(lineBytes: 0, sawCR: false, totalBytes: totalBytes + 1)
            } else if b == 0x0D {
                guard !sawCR else { return try fail(.badChunk) }
                state = .trailer(lineBytes: lineBytes, sawCR: true, totalBytes: totalBytes + 1)
            } else {
                guard !sawCR else { return try fail(.badChunk) }
                state = .trailer(lineBytes: lineBytes + 1, sawCR: false, totalBytes: totalBytes + 1)
            }
            return false
        default:
            return false
        }
    }

    private mutating func fail<T>(_ f: Failure) throws(Failure) -> T {
        state = .failed(f)
        throw f
    }
}

extension Substring {
    /// Without leading and trailing spaces and tabs (OWS, RFC 9110 §5.6.3).
    fileprivate var trimmingSpaces: Substring {
        var s = self
        while let c = s.first, c == " " || c == "\t" { s.removeFirst() }
        while let c = s.last, c == " " || c == "\t" { s.removeLast() }
        return s
    }
}
