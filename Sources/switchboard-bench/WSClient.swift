import CLinux
import Gateway
import Glibc
import Protocol

/// Where clients connect: the gateway's address, the upgrade path and, for child processes past the
/// ephemeral-port range of one source address, a loopback source address to bind.
struct Endpoint: @unchecked Sendable {
    let address: sockaddr_in
    let source: sockaddr_in?
    let hostHeader: String
    let path: String

    init(host: String, port: Int, path: String, sourceHost: String? = nil) throws(SyscallError) {
        address = try Socket.ipv4Address(host: host, port: port)
        source = try sourceHost.map { h throws(SyscallError) in try Socket.ipv4Address(host: h, port: 0) }
        hostHeader = "\(host):\(port)"
        self.path = path
    }
}

/// Why a client connection ended.
enum CloseCause: Sendable, Equatable, CustomStringConvertible {
    case connectFailed(CInt)
    /// A complete HTTP response other than 101.
    case handshakeRejected(Int)
    /// A 101 without the right `Upgrade`, `Connection` or `Sec-WebSocket-Accept`.
    case badAccept
    /// The response head did not parse.
    case badResponse
    case protocolError
    /// The server sent a close frame (code, if any).
    case peerClosed(UInt16?)
    /// FIN or RST without a close frame.
    case eof
    case ioError(CInt)
    /// The owner gave up waiting for connect + upgrade.
    case timeout

    var description: String {
        switch self {
        case .connectFailed(let e): "connect: \(String(cString: strerror(e)))"
        case .handshakeRejected(let s): "HTTP \(s) instead of 101"
        case .badAccept: "bad Sec-WebSocket-Accept/Upgrade"
        case .badResponse: "malformed HTTP response"
        case .protocolError: "WebSocket protocol error"
        case .peerClosed(let c): "server close \(c.map(String.init) ?? "(no code)")"
        case .eof: "connection closed without a close frame"
        case .ioError(let e): "I/O: \(String(cString: strerror(e)))"
        case .timeout: "connect/upgrade timeout"
        }
    }

    /// A short key for failure tallies in reports.
    var tallyKey: String {
        switch self {
        case .connectFailed(let e): "connect_errno_\(e)"
        case .handshakeRejected(let s): "http_\(s)"
        case .badAccept: "bad_accept"
        case .badResponse: "bad_response"
        case .protocolError: "protocol_error"
        case .peerClosed(let c): "server_close_\(c.map(String.init) ?? "none")"
        case .eof: "eof"
        case .ioError(let e): "io_errno_\(e)"
        case .timeout: "timeout"
        }
    }
}

/// What a client's owner hears. Called on the loop thread; a callback may `reset()` the client.
protocol WSClientDelegate: AnyObject {
    /// The 101 arrived and checked out; frames follow.
    func clientOpened(_ client: WSClient)
    /// One complete text message (bytes valid only during the call).
    func clientText(_ client: WSClient, _ text: UnsafeRawBufferPointer)
    /// The connection ended for a reason other than the owner's `reset()`. Called at most once.
    func clientClosed(_ client: WSClient, _ cause: CloseCause)
}

/// One WebSocket client connection, the only connection class of the bench: non-blocking connect, the
/// upgrade from `WebSocketHandshake.clientRequest`, the 101 parsed by `HTTPResponseHeadParser` and checked
/// with `isValidServerResponse`, then server frames read by `WebSocketReader(role: .client)`; every frame it
/// sends is masked with a fresh key (`FrameEncoder.frame(maskingKey:)`); server pings get pongs.
///
/// Loop-confined (see `BenchLoop`).
final class WSClient: EventHandler, @unchecked Sendable {
    enum State: UInt8 { case idle, connecting, handshaking, open, closed }

    let bench: BenchLoop
    unowned let delegate: WSClientDelegate
    /// The owner's index for this client (e.g. member number).
    let tag: Int
    private(set) var state = State.idle
    private(set) var fd: CInt = -1
    private var key = ""
    private var head: HTTPResponseHeadParser?
    private var reader = WebSocketReader(role: .client, maxMessageSize: 64 << 20)
    private var pending: [UInt8] = []
    private var pendingOffset = 0
    private var writeArmed = false
    private var corked = false
    /// Monotonic ns when `connect` was called / when the 101 was accepted.
    private(set) var startedAt: UInt64 = 0
    private(set) var openedAt: UInt64 = 0
    private(set) var pingsAnswered = 0

    init(bench: BenchLoop, delegate: WSClientDelegate, tag: Int) {
        self.bench = bench
        self.delegate = delegate
        self.tag = tag
    }

    var isOpen: Bool { state == .open }
    var isFinished: Bool { state == .closed }
    /// Bytes accepted by `send` and not yet written to the socket.
    var pendingBytes: Int { pending.count - pendingOffset }

    // MARK: - Connect and upgrade

    /// Starts a non-blocking connect. A failure here is reported through `clientClosed` on a later
    /// iteration (never re-entrantly, so an owner that reconnects on failure cannot recurse).
    func connect(_ endpoint: Endpoint) {
        precondition(state == .idle, "a WSClient connects once")
        startedAt = monotonicNanoseconds()
        state = .connecting
        let s = socket(AF_INET, CInt(SOCK_STREAM.rawValue) | CInt(SOCK_NONBLOCK.rawValue) | CInt(SOCK_CLOEXEC.rawValue), 0)
        guard s >= 0 else { return failLater(.connectFailed(errno)) }
        fd = s
        try? Socket.setOption(s, CInt(IPPROTO_TCP), TCP_NODELAY, 1)
        if var src = endpoint.source {
            try? Socket.setOption(s, CInt(IPPROTO_IP), 24 /* IP_BIND_ADDRESS_NO_PORT */, 1)
            let r = withUnsafePointer(to: &src) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(s, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            if r != 0 { return failLater(.connectFailed(errno)) }
        }
        var addr = endpoint.address
        let r = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(s, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        if r != 0 && errno != EINPROGRESS { return failLater(.connectFailed(errno)) }
        let request = WebSocketHandshake.clientRequest(host: endpoint.hostHeader, path: endpoint.path)
        key = request.key
        head = HTTPResponseHeadParser()
        // Optimistic write: on loopback the connection is usually established by the time connect returns,
        // which saves an EPOLLOUT round trip per handshake. EAGAIN means "still connecting".
        var events = EPOLLIN.rawValue | EPOLLRDHUP.rawValue
        let n = request.bytes.withUnsafeBytes { write(s, $0.baseAddress!, $0.count) }
        if n == request.bytes.count {
            state = .handshaking
        } else {
            let e = errno
            if n < 0 && e != EAGAIN && e != EWOULDBLOCK && e != EINTR { return failLater(.connectFailed(e)) }
            pending = n > 0 ? Array(request.bytes[n...]) : request.bytes
            if n > 0 { state = .handshaking }
            events |= EPOLLOUT.rawValue
            writeArmed = true
        }
        do {
            try bench.loop.register(fd: s, events: events, handler: self)
        } catch {
            return failLater(.connectFailed(error.code))
        }
    }

    private func failLater(_ cause: CloseCause) {
        if fd >= 0 { Glibc.close(fd); fd = -1 }
        state = .closed
        bench.run { [self] in delegate.clientClosed(self, cause) }
    }

    func handleEvent(_ events: UInt32) {
        if state == .connecting {
            var err: CInt = 0
            var len = socklen_t(MemoryLayout<CInt>.size)
            _ = getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len)
            if err != 0 { return fail(.connectFailed(err)) }
            guard events & EPOLLOUT.rawValue != 0 else { return }
            state = .handshaking
        }
        if events & EPOLLOUT.rawValue != 0 && writeArmed {
            flush()
            guard state != .closed else { return }
        }
        if events & (EPOLLIN.rawValue | EPOLLERR.rawValue | EPOLLHUP.rawValue | EPOLLRDHUP.rawValue) != 0 {
            readAvailable()
        }
    }

    /// Gives up on a connect or upgrade that takes too long (the owner sweeps).
    func timeOut() {
        guard state == .connecting || state == .handshaking else { return }
        fail(.timeout)
    }

    // MARK: - Reading

    private func readAvailable() {
        let buf = bench.readBuffer
        var rounds = 0
        while fd >= 0 && rounds < 8 {
            let n = read(fd, buf.baseAddress!, buf.count)
            if n > 0 {
                received(UnsafeMutableRawBufferPointer(start: buf.baseAddress!, count: n))
                if n < buf.count { return }
                rounds += 1
            } else if n == 0 {
                return fail(.eof)
            } else {
                let e = errno
                if e == EINTR { continue }
                if e == EAGAIN || e == EWOULDBLOCK { return }
                return fail(e == ECONNRESET ? .eof : .ioError(e))
            }
        }
    }

    private func received(_ bytes: UnsafeMutableRawBufferPointer) {
        switch state {
        case .handshaking:
            let result: HTTPResponseHeadParser.Result
            do {
                result = try head!.feed(UnsafeRawBufferPointer(bytes))
            } catch {
                return fail(.badResponse)
            }
            guard case .complete(let response, let consumed) = result else { return }
            head = nil
            guard response.status == 101 else { return fail(.handshakeRejected(response.status)) }
            guard WebSocketHandshake.isValidServerResponse(response, forKey: key) else { return fail(.badAccept) }
            state = .open
            openedAt = monotonicNanoseconds()
            delegate.clientOpened(self)
            if state == .open && consumed < bytes.count {
                feedFrames(UnsafeMutableRawBufferPointer(rebasing: bytes[consumed...]))
            }
        case .open:
            feedFrames(bytes)
        case .idle, .connecting, .closed:
            return
        }
    }

    private func feedFrames(_ bytes: UnsafeMutableRawBufferPointer) {
        var cause: CloseCause?
        do {
            try reader.feed(bytes) { event in
                switch event {
                case .text(let text):
                    self.delegate.clientText(self, text)
                case .binary:
                    break
                case .ping(let payload):
                    self.sendFrame(.pong, UnsafeRawBufferPointer(payload))
                    self.pingsAnswered += 1
                case .pong:
                    break
                case .close(let code, _):
                    cause = .peerClosed(code?.rawValue)
                    return false
                }
                return self.state == .open
            }
        } catch {
            cause = .protocolError
        }
        if let cause, state == .open {
            if case .peerClosed(let code) = cause {
                // Echo the close (RFC 6455 §5.5.1) and close at once (FIN, not RST, so the echo is delivered).
                let body = FrameEncoder.closePayload(code: code.flatMap { CloseCode(rawValue: $0) })
                sendFrame(.close, body)
                finish(reset: false)
                delegate.clientClosed(self, cause)
            } else {
                fail(cause)
            }
        }
    }

    // MARK: - Writing

    /// Sends one text message as a single masked frame.
    func sendText(_ text: [UInt8]) {
        sendFrame(.text, text)
    }

    func sendFrame(_ opcode: Opcode, _ payload: [UInt8]) {
        payload.withUnsafeBytes { sendFrame(opcode, $0) }
    }

    func sendFrame(_ opcode: Opcode, _ payload: UnsafeRawBufferPointer) {
        guard state == .open else { return }
        writeRaw(FrameEncoder.frame(opcode: opcode, payload: payload, maskingKey: bench.nextMask()))
    }

    /// Holds writes until `uncork()` (a burst leaves in one `write`).
    func cork() { corked = true }

    func uncork() {
        corked = false
        if pendingBytes > 0 && !writeArmed && fd >= 0 { flush() }
    }

    private func writeRaw(_ bytes: [UInt8]) {
        if corked || pendingBytes > 0 || writeArmed {
            pending.append(contentsOf: bytes)
            return
        }
        let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress!, $0.count) }
        if n == bytes.count { return }
        if n < 0 {
            let e = errno
            guard e == EAGAIN || e == EWOULDBLOCK || e == EINTR else { return fail(.ioError(e)) }
            pending = bytes
        } else {
            pending = Array(bytes[n...])
        }
        pendingOffset = 0
        armWrite(true)
    }

    private func flush() {
        while pendingBytes > 0 {
            let n = pending.withUnsafeBytes { write(fd, $0.baseAddress! + pendingOffset, $0.count - pendingOffset) }
            if n < 0 {
                let e = errno
                if e == EINTR { continue }
                if e == EAGAIN || e == EWOULDBLOCK { return armWrite(true) }
                return fail(.ioError(e))
            }
            pendingOffset += n
        }
        pending = []
        pendingOffset = 0
        armWrite(false)
    }

    private func armWrite(_ on: Bool) {
        guard fd >= 0, on != writeArmed else { return }
        writeArmed = on
        bench.loop.modify(fd: fd, events: EPOLLIN.rawValue | EPOLLRDHUP.rawValue | (on ? EPOLLOUT.rawValue : 0))
    }

    // MARK: - Closing

    /// Owner-initiated close with RST (SO_LINGER 0): no TIME_WAIT, no close handshake. No callback.
    func reset() {
        finish(reset: true)
    }

    private func fail(_ cause: CloseCause) {
        guard state != .closed else { return }
        finish(reset: true)
        delegate.clientClosed(self, cause)
    }

    private func finish(reset: Bool) {
        state = .closed
        head = nil
        pending = []
        pendingOffset = 0
        guard fd >= 0 else { return }
        if reset {
            var l = linger(l_onoff: 1, l_linger: 0)
            _ = setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, socklen_t(MemoryLayout<linger>.size))
        }
        bench.loop.deregister(fd: fd)
        Glibc.close(fd)
        fd = -1
    }
}
