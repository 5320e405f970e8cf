import CLinux
import Glibc
import Protocol
import Runtime

private let evIn = EPOLLIN.rawValue
private let evOut = EPOLLOUT.rawValue
private let evErr = EPOLLERR.rawValue
private let evHup = EPOLLHUP.rawValue
private let evRdHup = EPOLLRDHUP.rawValue

/// Why a connection ended.
public enum ConnectionEnd: Sendable, Equatable, CustomStringConvertible {
    /// `connect(2)` failed (errno).
    case connectFailed(CInt)
    /// A complete HTTP response other than 101 (status).
    case handshakeRejected(Int)
    /// A malformed response head, or a 101 without the right `Sec-WebSocket-Accept`.
    case badHandshake
    /// A WebSocket protocol error in the server's frames.
    case protocolError
    /// The server sent a close frame (code, if any).
    case serverClosed(UInt16?)
    /// FIN or RST without a close frame, or a read/write error.
    case eof
    /// Connect plus upgrade took longer than the client's connect timeout.
    case timeout

    public var description: String {
        switch self {
        case .connectFailed(let e): "connect: \(String(cString: strerror(e)))"
        case .handshakeRejected(let s): "HTTP \(s) instead of 101"
        case .badHandshake: "bad handshake response"
        case .protocolError: "WebSocket protocol error"
        case .serverClosed(let c): "server close \(c.map(String.init) ?? "(no code)")"
        case .eof: "connection lost"
        case .timeout: "connect/upgrade timeout"
        }
    }

    /// The public summary of a connection's finer-grained `CloseCause`.
    init(_ cause: CloseCause) {
        switch cause {
        case .connectFailed(let e): self = .connectFailed(e)
        case .handshakeRejected(let s): self = .handshakeRejected(s)
        case .badAccept, .badResponse: self = .badHandshake
        case .protocolError: self = .protocolError
        case .peerClosed(let c): self = .serverClosed(c)
        case .eof, .ioError: self = .eof
        case .timeout: self = .timeout
        }
    }
}

/// Where a `ClientConnection` connects: the gateway's address, the `Host` header, the upgrade path and,
/// optionally, a local source address to bind (the bench's child processes bind 127.0.0.x so each has its
/// own ephemeral-port range).
package struct Endpoint: @unchecked Sendable {
    package let address: sockaddr_in
    package let source: sockaddr_in?
    package let hostHeader: String
    package let path: String

    /// Resolves dotted-quad `host` (and `sourceHost`, if given). Errors: `SyscallError` for a bad address.
    package init(host: String, port: Int, path: String, sourceHost: String? = nil) throws(SyscallError) {
        address = try Socket.ipv4Address(host: host, port: port)
        source = try sourceHost.map { h throws(SyscallError) in try Socket.ipv4Address(host: h, port: 0) }
        hostHeader = "\(host):\(port)"
        self.path = path
    }

    /// An already-resolved address (no source binding).
    package init(address: sockaddr_in, hostHeader: String, path: String) {
        self.address = address
        self.source = nil
        self.hostHeader = hostHeader
        self.path = path
    }
}

/// Why a `ClientConnection` ended, in the detail the bench tallies (`ConnectionEnd` is the public summary).
package enum CloseCause: Sendable, Equatable, CustomStringConvertible {
    /// `socket`, `bind`, `connect(2)` or the first write failed (errno).
    case connectFailed(CInt)
    /// A complete HTTP response other than 101.
    case handshakeRejected(Int)
    /// A 101 without the right `Upgrade`, `Connection` or `Sec-WebSocket-Accept`.
    case badAccept
    /// The response head did not parse.
    case badResponse
    /// A WebSocket protocol error in the server's frames.
    case protocolError
    /// The server sent a close frame (code, if any).
    case peerClosed(UInt16?)
    /// FIN or RST without a close frame.
    case eof
    /// A read or write failed with this errno (other than ECONNRESET, which is `eof`).
    case ioError(CInt)
    /// The owner gave up waiting for connect + upgrade (`timeOut()`).
    case timeout

    package var description: String {
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
}

/// What a connection's owner hears. Called on the loop thread; a callback may `reset()` the connection.
/// One delegate usually serves many connections and tells them apart by `tag` (no per-connection closures).
package protocol ClientConnectionDelegate: AnyObject {
    /// The 101 arrived and checked out; frames follow.
    func clientOpened(_ client: ClientConnection)
    /// One complete text message (bytes valid only during the call).
    func clientText(_ client: ClientConnection, _ text: UnsafeRawBufferPointer)
    /// The connection ended for a reason other than the owner's `reset()` / `closeNormally()`. Called at
    /// most once, never from inside `connect`.
    func clientClosed(_ client: ClientConnection, _ cause: CloseCause)
}

/// One client WebSocket connection on a `ClientLoop`, shared by `SwitchboardClient` and the bench's load
/// generator: non-blocking connect (optionally from a bound source address), the upgrade from
/// `WebSocketHandshake.clientRequest` written optimistically right after `connect(2)` (on loopback the
/// connection is usually up by then, saving an EPOLLOUT round trip per handshake), the 101 parsed by
/// `HTTPResponseHeadParser` and checked with `isValidServerResponse`, then server frames read by
/// `WebSocketReader(role: .client)`. Every frame sent is masked with a fresh key; server pings get pongs.
/// Writes use `send(MSG_NOSIGNAL)`, so no SIGPIPE handling is needed.
///
/// Loop-confined, one use only. The delegate is `weak`: an owner released on another thread (a test that
/// drops its clients) leaves a connection that reports to nobody until its `reset()` runs on the loop.
package final class ClientConnection: EventHandler, @unchecked Sendable {
    /// Lifecycle: `idle` → `connecting` → `handshaking` → `open` → `closed` (any state may go to `closed`).
    package enum State: UInt8 { case idle, connecting, handshaking, open, closed }

    package let loop: ClientLoop
    package private(set) weak var delegate: ClientConnectionDelegate?
    /// The owner's index for this connection (e.g. member number).
    package let tag: Int
    package private(set) var state = State.idle
    package private(set) var fd: CInt = -1
    private var key = ""
    private var head: HTTPResponseHeadParser?
    private var reader = WebSocketReader(role: .client, maxMessageSize: 64 << 20)
    private var pending: [UInt8] = []
    private var pendingOffset = 0
    private var writeArmed = false
    private var corked = false
    /// Set by `reset()` / `closeNormally()`: a `clientClosed` still queued by `connect` is dropped.
    private var silenced = false
    /// Monotonic ns when `connect` was called / when the 101 was accepted.
    package private(set) var startedAt: UInt64 = 0
    package private(set) var openedAt: UInt64 = 0
    /// Server pings answered with a pong.
    package private(set) var pingsAnswered = 0

    /// A connection on `loop` reporting to `delegate` (held `weak`), labelled `tag`. Loop thread.
    package init(loop: ClientLoop, delegate: ClientConnectionDelegate, tag: Int = 0) {
        self.loop = loop
        self.delegate = delegate
        self.tag = tag
    }

    package var isOpen: Bool { state == .open }
    package var isFinished: Bool { state == .closed }
    /// Bytes accepted by `send` and not yet written to the socket.
    package var pendingBytes: Int { pending.count - pendingOffset }

    // MARK: - Connect and upgrade

    /// Starts a non-blocking connect. A failure here is reported through `clientClosed` on a later
    /// iteration (never re-entrantly, so an owner that reconnects on failure cannot recurse).
    package func connect(_ endpoint: Endpoint) {
        precondition(state == .idle, "a ClientConnection connects once")
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
        // Optimistic write; EAGAIN means "still connecting".
        var events = evIn | evRdHup
        let n = request.bytes.withUnsafeBytes { send(s, $0.baseAddress!, $0.count, Int32(MSG_NOSIGNAL)) }
        if n == request.bytes.count {
            state = .handshaking
        } else {
            let e = errno
            if n < 0 && e != EAGAIN && e != EWOULDBLOCK && e != EINTR { return failLater(.connectFailed(e)) }
            pending = n > 0 ? Array(request.bytes[n...]) : request.bytes
            if n > 0 { state = .handshaking }
            events |= evOut
            writeArmed = true
        }
        do {
            try loop.loop.register(fd: s, events: events, handler: self)
        } catch {
            return failLater(.connectFailed(error.code))
        }
    }

    private func failLater(_ cause: CloseCause) {
        if fd >= 0 { Glibc.close(fd); fd = -1 }
        state = .closed
        loop.run { [self] in if !silenced { delegate?.clientClosed(self, cause) } }
    }

    package func handleEvent(_ events: UInt32) {
        if state == .connecting {
            var err: CInt = 0
            var len = socklen_t(MemoryLayout<CInt>.size)
            _ = getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len)
            if err != 0 { return fail(.connectFailed(err)) }
            guard events & evOut != 0 else { return }
            state = .handshaking
        }
        if events & evOut != 0 && writeArmed {
            flush()
            guard state != .closed else { return }
        }
        if events & (evIn | evErr | evHup | evRdHup) != 0 {
            readAvailable()
        }
    }

    /// Gives up on a connect or upgrade still in progress (reported as `.timeout`; the owner sweeps).
    package func timeOut() {
        guard state == .connecting || state == .handshaking else { return }
        fail(.timeout)
    }

    // MARK: - Reading

    private func readAvailable() {
        let buf = loop.readBuffer
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
            delegate?.clientOpened(self)
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
                    self.delegate?.clientText(self, text)
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
                delegate?.clientClosed(self, cause)
            } else {
                fail(cause)
            }
        }
    }

    // MARK: - Writing

    /// Sends one text message as a single masked frame. Ignored unless open.
    package func sendText(_ text: [UInt8]) {
        sendFrame(.text, text)
    }

    /// Sends one masked frame. Ignored unless open.
    package func sendFrame(_ opcode: Opcode, _ payload: [UInt8]) {
        payload.withUnsafeBytes { sendFrame(opcode, $0) }
    }

    /// Sends one masked frame. Ignored unless open.
    package func sendFrame(_ opcode: Opcode, _ payload: UnsafeRawBufferPointer) {
        guard state == .open else { return }
        writeRaw(FrameEncoder.frame(opcode: opcode, payload: payload, maskingKey: loop.nextMask()))
    }

    /// Holds writes until `uncork()` (a burst leaves in one `send`).
    package func cork() { corked = true }

    /// Writes what `cork()` held back.
    package func uncork() {
        corked = false
        if pendingBytes > 0 && !writeArmed && fd >= 0 { flush() }
    }

    private func writeRaw(_ bytes: [UInt8]) {
        if corked || pendingBytes > 0 || writeArmed {
            pending.append(contentsOf: bytes)
            return
        }
        let n = bytes.withUnsafeBytes { send(fd, $0.baseAddress!, $0.count, Int32(MSG_NOSIGNAL)) }
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
            let n = pending.withUnsafeBytes { send(fd, $0.baseAddress! + pendingOffset, $0.count - pendingOffset, Int32(MSG_NOSIGNAL)) }
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
        loop.loop.modify(fd: fd, events: evIn | evRdHup | (on ? evOut : 0))
    }

    // MARK: - Closing

    /// Owner-initiated close with RST (SO_LINGER 0): no TIME_WAIT, no close handshake. No callback.
    package func reset() {
        silenced = true
        finish(reset: true)
    }

    /// Sends a close frame (1000) if open, then closes with FIN. No callback.
    package func closeNormally() {
        silenced = true
        if state == .open { sendFrame(.close, FrameEncoder.closePayload(code: .normalClosure)) }
        finish(reset: false)
    }

    private func fail(_ cause: CloseCause) {
        guard state != .closed else { return }
        finish(reset: true)
        delegate?.clientClosed(self, cause)
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
        loop.loop.deregister(fd: fd)
        Glibc.close(fd)
        fd = -1
    }
}
