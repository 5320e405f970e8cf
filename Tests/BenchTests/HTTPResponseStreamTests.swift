import Testing

@testable import switchboard_bench

/// The HTTP publisher's response framing (nchan's answers to pipelined POSTs) and the bare-payload scan of
/// nchan's message frames.
@Suite struct HTTPResponseStreamTests {
    typealias Response = HTTPResponseStream.Response

    /// The stream split at every offset into two feeds, byte at a time, and whole.
    static func splits(_ bytes: [UInt8]) -> [[[UInt8]]] {
        var result: [[[UInt8]]] = (0...bytes.count).map { [Array(bytes[..<$0]), Array(bytes[$0...])] }
        result.append(bytes.map { [$0] })
        return result
    }

    /// Feeds `pieces` to a fresh stream; the responses, and the failure if one was thrown.
    static func run(_ pieces: [[UInt8]], maxBodyBytes: Int = 1 << 20) -> ([Response], HTTPResponseStream.Failure?) {
        var stream = HTTPResponseStream(maxBodyBytes: maxBodyBytes)
        var out: [Response] = []
        for piece in pieces {
            if let failure = feed(&stream, piece, &out) { return (out, failure) }
        }
        return (out, nil)
    }

    /// One feed; the failure it threw, if any.
    static func feed(_ stream: inout HTTPResponseStream, _ bytes: [UInt8], _ out: inout [Response]) -> HTTPResponseStream.Failure? {
        bytes.withUnsafeBytes { raw -> HTTPResponseStream.Failure? in
            do throws(HTTPResponseStream.Failure) {
                try stream.feed(raw) { out.append($0) }
                return nil
            } catch {
                return error
            }
        }
    }

    /// The body nchan 1.3.6 answers a POST with (text/plain channel info).
    static func nchanBody(queued: Int) -> String {
        "queued messages: \(queued)\nlast requested: 0 sec. ago\nactive subscribers: 1\nlast message id: 1796400451:\(queued)"
    }

    static func nchanAnswer(_ status: String, queued: Int) -> String {
        let body = nchanBody(queued: queued)
        return "HTTP/1.1 \(status)\r\nServer: nginx/1.22.1\r\nContent-Type: text/plain\r\nContent-Length: \(body.utf8.count)\r\n"
            + "Connection: keep-alive\r\n\r\n" + body
    }

    @Test func pipelinedNchanAnswersInEverySplit() {
        let text =
            Self.nchanAnswer("201 Created", queued: 2) + Self.nchanAnswer("201 Created", queued: 3)
            + Self.nchanAnswer("202 Accepted", queued: 4)
        let bytes = Array(text.utf8)
        for pieces in Self.splits(bytes) {
            let (responses, failure) = Self.run(pieces)
            #expect(failure == nil)
            #expect(responses.map(\.status) == [201, 201, 202])
            #expect(responses.map(\.bodyBytes) == [2, 3, 4].map { Self.nchanBody(queued: $0).utf8.count })
            #expect(responses.allSatisfy { !$0.closes })
        }
    }

    @Test func aResponseIsReportedOnlyWhenItsBodyIsComplete() {
        let bytes = Array(Self.nchanAnswer("201 Created", queued: 1).utf8)
        let (partial, _) = Self.run([Array(bytes.dropLast())])
        #expect(partial.isEmpty)
        let (whole, _) = Self.run([Array(bytes.dropLast()), [bytes.last!]])
        #expect(whole.map(\.status) == [201])
    }

    @Test func chunkedBodiesInterimAndBodylessResponses() {
        let text =
            "HTTP/1.1 100 Continue\r\n\r\n"
            + "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
            + "5;name=value\r\nhello\r\n1A\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\nX-Trailer: yes\r\n\r\n"
            + "HTTP/1.1 204 No Content\r\n\r\n"
            + "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        for pieces in Self.splits(Array(text.utf8)) {
            let (responses, failure) = Self.run(pieces)
            #expect(failure == nil)
            #expect(
                responses == [
                    Response(status: 200, bodyBytes: 31, closes: false), Response(status: 204, bodyBytes: 0, closes: false),
                    Response(status: 503, bodyBytes: 0, closes: true)
                ])
        }
    }

    @Test func http10WithoutKeepAliveCloses() {
        let (responses, _) = Self.run([Array("HTTP/1.0 201 Created\r\nContent-Length: 2\r\n\r\nok".utf8)])
        #expect(responses == [Response(status: 201, bodyBytes: 2, closes: true)])
    }

    @Test func badFramingIsATypedFailureThatSticks() {
        let cases: [(String, HTTPResponseStream.Failure)] = [
            ("HTTP/1.1 201 Created\r\n\r\nbody", .unframedBody),
            ("HTTP/1.1 201 Created\r\nContent-Length: 12a\r\n\r\n", .badContentLength),
            ("HTTP/1.1 201 Created\r\nContent-Length: -1\r\n\r\n", .badContentLength),
            ("HTTP/1.1 201 Created\r\nContent-Length: 3, 4\r\n\r\nabcd", .badContentLength),
            ("HTTP/1.1 201 Created\r\nContent-Length: 2000000\r\n\r\n", .badContentLength),
            ("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", .badChunk),
            ("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\r\n", .badChunk),
            ("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcX", .badChunk),
            ("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1000000000000000\r\n", .badChunk),
            ("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n200000\r\n", .badChunk)
        ]
        for (text, expected) in cases {
            for pieces in Self.splits(Array(text.utf8)) {
                let (_, failure) = Self.run(pieces)
                #expect(failure == expected, "\(text.debugDescription)")
            }
        }
        let (_, garbage) = Self.run([Array("SSH-2.0-OpenSSH\r\n\r\n".utf8)])
        guard case .badHead(400, _)? = garbage else {
            Issue.record("garbage head: \(String(describing: garbage))")
            return
        }
        // Once failed, the stream refuses everything, even a valid response.
        var stream = HTTPResponseStream()
        var seen: [Response] = []
        for text in ["HTTP/1.1 201 Created\r\n\r\nx", Self.nchanAnswer("201 Created", queued: 1)] {
            #expect(Self.feed(&stream, Array(text.utf8), &seen) == .unframedBody)
        }
        #expect(seen.isEmpty)
    }

    @Test func endlessFramingLinesAreBounded() {
        // A chunk extension that never ends, and a trailer section that never ends: refused, not buffered.
        let head = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        let (_, ext) = Self.run([Array((head + "5;" + String(repeating: "x", count: 5000)).utf8)])
        #expect(ext == .badChunk)
        let (_, trailer) = Self.run([Array((head + "0\r\n" + String(repeating: "X-T: y\r\n", count: 3000)).utf8)])
        #expect(trailer == .badChunk)
    }

    @Test func nchanFramesAreTheBarePayload() {
        let payload = Array(#"{"t":1796400451123456789,"s":42,"p":"xxxx"}"#.utf8)
        let fields = payload.withUnsafeBytes { FrameScan.benchPayload($0) }
        #expect(fields?.t == 1_796_400_451_123_456_789 && fields?.s == 42)
        // The same data inside Switchboard's envelope is found by the envelope scan only.
        let envelope = Array(#"{"op":"message","room":"bench","offset":7,"data":{"p":"x","s":42,"t":99}}"#.utf8)
        #expect(envelope.withUnsafeBytes { FrameScan.benchMessage($0) }.map { [Int($0.t), $0.s] } == [99, 42])
        #expect(payload.withUnsafeBytes { FrameScan.benchMessage($0) } == nil)
        for other in [#"{"op":"hello"}"#, "", "queued messages: 1", #"{"t":"x","s":1}"#] {
            #expect(Array(other.utf8).withUnsafeBytes { FrameScan.benchPayload($0) } == nil, "\(other)")
        }
    }
}
