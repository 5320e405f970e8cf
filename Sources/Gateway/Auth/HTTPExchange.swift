import CLinux
import Glibc
import Protocol
import Runtime

/// One HTTP/1.1 request and its response over a non-blocking TCP socket on an event loop: the auth backend's
/// client. The socket I/O is the runtime's `StreamSocket` (the same read/write loop as every other socket);
/// nothing blocks, and one timer bounds the whole exchange (connect to last byte).
///
/// The request is sent with `Connection: close`; the response body is framed by `Content-Length`, by
/// `Transfer-Encoding: chunked`, or by EOF. Bodies over `maxBodyBytes` fail. The completion runs exactly
/// once, on the loop, never from inside `start`. Loop-confined.
final class HTTPExchange: StreamSocket, @unchecked Sendable {
    /// Why an exchange failed. All of these are retryable transport failures for the caller.
    enum Failure: Error, Equatable, Sendable {
        /// `connect` failed (e.g. `ECONNREFUSED`), or no address was known.
        case connect(CInt)
        /// The timeout passed first.
        case timeout
        /// A read or write failed.
        case io(CInt)
        /// The response was not HTTP/1.x or its framing was broken.
        case malformed(String)
        /// The response head or body passed its limit.
        case tooLarge
        /// The peer closed before the response was complete.
        case closedEarly
    }

    /// A complete response.
    struct Response: Sendable {
        var status: Int
        var headers: HTTPHeaders
        var body: [UInt8]
    }

    typealias Completion = (Result<Response, Failure>) -> Void

    private var requestSent = false
    private var input: [UInt8] = []
    private var head: HTTPResponseHead?
    private var bodyStart = 0
    private let maxBodyBytes: Int
    private var timer: ClosureTimer?
    private var completion: Completion?

    /// Starts the exchange on `context`'s loop (its thread). `timeoutMs` bounds everything; `completion` is
    /// called once.
    @discardableResult
    static func start(
        context: SocketContext, address: sockaddr_in?, request: [UInt8], timeoutMs: Int, maxBodyBytes: Int = 64 * 1024,
        completion: @escaping Completion
    ) -> HTTPExchange {
        let x = HTTPExchange(context: context, maxBodyBytes: maxBodyBytes, completion: completion)
        x.begin(address: address, request: request, timeoutMs: timeoutMs)
        return x
    }

    private init(context: SocketContext, maxBodyBytes: Int, completion: @escaping Completion) {
        self.maxBodyBytes = maxBodyBytes
        self.completion = completion
        super.init(context: context, fd: -1)
    }

    private func begin(address: sockaddr_in?, request: [UInt8], timeoutMs: Int) {
        let loop = context.loop
        timer = loop.schedule(afterMilliseconds: timeoutMs) { [weak self] in self?.finish(.failure(.timeout)) }
        guard var addr = address else { return failSoon(.connect(EHOSTUNREACH)) }
        let s = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard s >= 0 else { return failSoon(.connect(errno)) }
        attach(fd: s)
        try? Socket.setOption(s, CInt(IPPROTO_TCP), TCP_NODELAY, 1)
        var r: CInt
        repeat {
            r = withUnsafePointer(to: &addr) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(s, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
        } while r < 0 && errno == EINTR
        if r < 0 && errno != EINPROGRESS { return failSoon(.connect(errno)) }
        guard register() else { return failSoon(.io(EBADF)) }
        // Queued now, written at the end of this iteration; EAGAIN while connecting arms EPOLLOUT.
        enqueueRaw(Bytes(request))
    }

    /// Reports a failure from the next timer tick, so the completion never runs inside `start`.
    private func failSoon(_ failure: Failure) {
        timer?.cancel()
        timer = context.loop.schedule(afterMilliseconds: 0) { [self] in self.finish(.failure(failure)) }
    }

    override func didDrain() { requestSent = true }

    override func received(_ bytes: UnsafeMutableRawBufferPointer) {
        guard completion != nil else { return }
        input.append(contentsOf: bytes)
        if input.count > maxBodyBytes + 16 * 1024 { return finish(.failure(.tooLarge)) }
        if let done = parse(eof: false) { finish(done) }
    }

    override func peerClosed() { finish(parse(eof: true) ?? .failure(.closedEarly)) }
    override func readFailed(errno e: CInt) { finish(.failure(requestSent ? .io(e) : .connect(e))) }
    override func writeFailed(errno e: CInt) { finish(.failure(requestSent ? .io(e) : .connect(e))) }

    /// A finished result when the input holds a complete response, else nil (need more).
    private func parse(eof: Bool) -> Result<Response, Failure>? {
        while head == nil {
            var parser = HTTPResponseHeadParser()
            let result: HTTPResponseHeadParser.Result
            do {
                result = try input.withUnsafeBytes { try parser.feed($0) }
            } catch let e as HTTPError {
                return .failure(e.status.rawValue == 431 ? .tooLarge : .malformed(e.reason))
            } catch {
                return .failure(.malformed("\(error)"))
            }
            guard case .complete(let h, let consumed) = result else { return eof ? .failure(.closedEarly) : nil }
            if (100...199).contains(h.status) {
                input.removeFirst(consumed)  // 100 Continue and other interim answers: skip
                continue
            }
            head = h
            bodyStart = consumed
        }
        guard let h = head else { return nil }
        let body = input[bodyStart...]
        if h.status == 204 || h.status == 304 { return .success(Response(status: h.status, headers: h.headers, body: [])) }
        if h.headers.containsToken("chunked", in: "Transfer-Encoding") {
            switch Self.decodeChunked(body, limit: maxBodyBytes) {
            case .complete(let b): return .success(Response(status: h.status, headers: h.headers, body: b))
            case .needMore: return eof ? .failure(.closedEarly) : nil
            case .invalid(let why): return .failure(why == "too large" ? .tooLarge : .malformed(why))
            }
        }
        if let cl = h.headers["Content-Length"] {
            guard let n = Int(cl), n >= 0 else { return .failure(.malformed("bad Content-Length")) }
            guard n <= maxBodyBytes else { return .failure(.tooLarge) }
            if body.count >= n { return .success(Response(status: h.status, headers: h.headers, body: Array(body.prefix(n)))) }
            return eof ? .failure(.closedEarly) : nil
        }
        guard body.count <= maxBodyBytes else { return .failure(.tooLarge) }
        return eof ? .success(Response(status: h.status, headers: h.headers, body: Array(body))) : nil
    }

    enum ChunkedResult: Equatable {
        case complete([UInt8])
        case needMore
        case invalid(String)
    }

    /// Decodes a chunked body (RFC 9112 §7.1) from its first byte; extensions and trailers are skipped.
    static func decodeChunked(_ bytes: ArraySlice<UInt8>, limit: Int) -> ChunkedResult {
        var out: [UInt8] = []
        var i = bytes.startIndex
        func line() -> Range<Int>? {
            var j = i
            while j + 1 < bytes.endIndex {
                if bytes[j] == 0x0D && bytes[j + 1] == 0x0A { return i..<j }
                j += 1
            }
            return nil
        }
        while true {
            guard let l = line() else { return .needMore }
            var size = 0
            var digits = 0
            for k in l {
                let c = bytes[k]
                if c == UInt8(ascii: ";") { break }
                guard let v = hexValue(c) else { return .invalid("bad chunk size") }
                size = size * 16 + Int(v)
                digits += 1
                if digits > 8 { return .invalid("too large") }
            }
            guard digits > 0 else { return .invalid("bad chunk size") }
            i = l.upperBound + 2
            if size == 0 {
                // Trailer section: lines until an empty one.
                while true {
                    guard let t = line() else { return .needMore }
                    i = t.upperBound + 2
                    if t.isEmpty { return .complete(out) }
                }
            }
            guard out.count + size <= limit else { return .invalid("too large") }
            guard bytes.endIndex - i >= size + 2 else { return .needMore }
            out.append(contentsOf: bytes[i..<(i + size)])
            i += size
            guard bytes[i] == 0x0D, bytes[i + 1] == 0x0A else { return .invalid("chunk not followed by CRLF") }
            i += 2
        }
    }

    /// Idempotent: cancels the timer, closes the socket, runs the completion once.
    private func finish(_ result: Result<Response, Failure>) {
        guard let done = completion else { return }
        completion = nil
        timer?.cancel()
        timer = nil
        closeSocket()
        done(result)
    }
}
