import CLinux
import Glibc
import Protocol
import Runtime

/// Where a `ClientConnection` connects: the gateway's address, the `Host` header, the upgrade path and,
/// optionally, a local source address to bind (the bench's child processes bind 127.0.0.x so each has its
/// own ephemeral-port range).
package struct Endpoint: @unchecked Sendable {
    package let address: sockaddr_in
    package let source: sockaddr_in?
    package let hostHeader: String
    package let path: String
    /// Makes each connection's transport (the bench's `--tls` sets a TLS one); nil = plain TCP.
    package var transportFactory: (@Sendable () -> any Transport)? = nil

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

/// Why a client connection ended: what `SwitchboardClient.onDisconnect` reports and the bench tallies.
public enum ConnectionEnd: Sendable, Equatable, CustomStringConvertible {
    /// `socket`, `bind`, `connect(2)` or the first write failed (errno).
    case connectFailed(CInt)
    /// A complete HTTP response other than 101 (status).
    case handshakeRejected(Int)
    /// A 101 without the right `Upgrade`, `Connection` or `Sec-WebSocket-Accept`.
    case badAccept
    /// The response head did not parse.
    case badResponse
    /// A WebSocket protocol error in the server's frames.
    case protocolError
    /// The server sent a close frame (code, if any).
    case serverClosed(UInt16?)
    /// FIN or RST without a close frame.
    case eof
    /// A read or write failed with this errno (other than ECONNRESET, which is `eof`).
    case ioError(CInt)
    /// Connect plus upgrade took longer than the owner waited (`timeOut()`).
    case timeout

    public var description: String {
        switch self {
        case .connectFailed(let e): "connect: \(String(cString: strerror(e)))"
        case .handshakeRejected(let s): "HTTP \(s) instead of 101"
        case .badAccept: "bad Sec-WebSocket-Accept/Upgrade"
        case .badResponse: "malformed HTTP response"
        case .protocolError: "WebSocket protocol error"
        case .serverClosed(let c): "server close \(c.map(String.init) ?? "(no code)")"
        case .eof: "connection closed without a close frame"
        case .ioError(let e): "I/O: \(String(cString: strerror(e)))"
        case .timeout: "connect/upgrade timeout"
        }
    }

    /// A short key for failure tallies in reports (the bench).
    public var tallyKey: String {
        switch self {
        case .connectFailed(let e): "connect_errno_\(e)"
        case .handshakeRejected(let s): "http_\(s)"
        case .badAccept: "bad_accept"
        case .badResponse: "bad_response"
        case .protocolError: "protocol_error"
        case .serverClosed(let c): "server_close_\(c.map(String.init) ?? "none")"
        case .eof: "eof"
        case .ioError(let e): "io_errno_\(e)"
        case .timeout: "timeout"
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
    func clientClosed(_ client: ClientConnection, _ cause: ConnectionEnd)
}

/// One client WebSocket connection on a `ClientLoop`, shared by `SwitchboardClient` and the bench's load
/// generator: non-blocking connect (optionally from a bound source address), the upgrade from
/// `WebSocketHandshake.clientRequest` written right after `connect(2)` (on loopback the connection is
/// usually up by then, saving an EPOLLOUT round trip per handshake), the 101 parsed by
/// `HTTPResponseHeadParser` and checked with `isValidServerResponse`, then server frames read by
/// `WebSocketReader(role: .client)`. Every frame sent is masked with a fresh key; server pings get pongs.
/// The socket I/O (queue, vectored writes at the end of the loop iteration, reads into the loop's shared
/// buffer) is the runtime's `StreamSocket`, the same as the gateway's.
///
/// Loop-confined, one use only. The delegate is `weak`: an owner released on another thread (a test that
/// drops its clients) leaves a connection that reports to nobody until its `reset()` runs on the loop.
package final class ClientConnection: StreamSocket, @unchecked Sendable {
    /// Lifecycle: `idle` → `connecting` → `handshaking` → `open` → `closed` (any state may go to `closed`).
    package enum State: UInt8 { case idle, connecting, handshaking, open, closed }

    /// Held strongly (unlike the runtime's unowned context): a client may outlive its owner's reference to the
    /// loop, e.g. a reset queued by `SwitchboardClient.deinit` that runs after the test dropped the loop.
    package let loop: ClientLoop
    package private(set) weak var delegate: ClientConnectionDelegate?
    /// The owner's index for this connection (e.g. member number).
    package let tag: Int
    package private(set) var state = State.idle
    private var key = ""
    private var head: HTTPResponseHeadParser?
    private var reader = WebSocketReader(role: .client, maxMessageSize: 64 << 20)
    /// Set by `reset()` / `closeNormally()`: a `clientClosed` still queued by `connect` is dropped.
    private var silenced = false
    /// Monotonic ns when `connect` was called / when the 101 was accepted.
    package private(set) var startedAt: UInt64 = 0
    package private(set) var openedAt: UInt64 = 0
    /// Server pings answered with a pong.
    package private(set) var pingsAnswered = 0

    /// A connection on `loop` reporting to `delegate` (held `weak`), labelled `tag`, over `endpoint`'s transport
    /// (plain TCP when it has no `transportFactory`). Loop thread.
    package init(loop: ClientLoop, delegate: ClientConnectionDelegate, tag: Int = 0, transportFor endpoint: Endpoint? = nil) {
        self.loop = loop
        self.delegate = delegate
        self.tag = tag
        super.init(context: loop, fd: -1, transport: endpoint?.transportFactory?() ?? PlainTransport.shared)
    }

    package var isOpen: Bool { state == .open }
    package var isFinished: Bool { state == .closed }
    /// Bytes queued and not yet written to the socket.
    package var pendingBytes: Int { queuedBytes }

    // MARK: - Connect and upgrade

    /// Starts a non-blocking connect. A failure here is reported through `clientClosed` on a later
    /// iteration (never re-entrantly, so an owner that reconnects on failure cannot recurse).
    package func connect(_ endpoint: Endpoint) {
        precondition(state == .idle, "a ClientConnection connects once")
        startedAt = monotonicNanoseconds()
        state = .connecting
        let s: CInt
        do {
            s = try Socket.startConnect(to: endpoint.address, from: endpoint.source)
        } catch {
            return failLater(.connectFailed(error.code))
        }
        attach(fd: s)
        guard register() else { return failLater(.connectFailed(EBADF)) }
        let request = WebSocketHandshake.clientRequest(host: endpoint.hostHeader, path: endpoint.path)
        key = request.key
        head = HTTPResponseHeadParser()
        // Written now: EAGAIN (still connecting) arms EPOLLOUT and the rest leaves when the socket is writable.
        enqueueRaw(Bytes(request.bytes))
        flushNow()
    }

    private func failLater(_ cause: ConnectionEnd) {
        state = .closed
        loop.run { [self] in if !silenced { delegate?.clientClosed(self, cause) } }
    }

    /// The upgrade request left: the connect succeeded.
    override package func didDrain() {
        if state == .connecting { state = .handshaking }
    }

    /// Gives up on a connect or upgrade still in progress (reported as `.timeout`; the owner sweeps).
    package func timeOut() {
        guard state == .connecting || state == .handshaking else { return }
        fail(.timeout)
    }

    // MARK: - Reading

    override package func received(_ bytes: UnsafeMutableRawBufferPointer) {
        if state == .connecting { state = .handshaking }
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
        var cause: ConnectionEnd?
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
                    cause = .serverClosed(code?.rawValue)
                    return false
                }
                return self.state == .open
            }
        } catch {
            cause = .protocolError
        }
        if let cause, state == .open {
            if case .serverClosed(let code) = cause {
                // Echo the close (RFC 6455 §5.5.1) and close at once (FIN, not RST, so the echo is delivered).
                sendFrame(.close, FrameEncoder.closePayload(code: code.flatMap { CloseCode(rawValue: $0) }))
                finish(reset: false)
                delegate?.clientClosed(self, cause)
            } else {
                fail(cause)
            }
        }
    }

    override package func peerClosed() { fail(.eof) }
    override package func readFailed(errno e: CInt) { fail(endCause(e)) }
    override package func writeFailed(errno e: CInt) { fail(endCause(e)) }

    private func endCause(_ e: CInt) -> ConnectionEnd {
        if state == .connecting { return .connectFailed(e) }
        return e == ECONNRESET || e == EPIPE ? .eof : .ioError(e)
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

    /// Sends one masked frame (RFC 6455 §5.3: a fresh masking key per frame). Ignored unless open.
    package func sendFrame(_ opcode: Opcode, _ payload: UnsafeRawBufferPointer) {
        guard state == .open else { return }
        enqueueRaw(Bytes(FrameEncoder.frame(opcode: opcode, payload: payload, maskingKey: loop.nextMask())))
    }

    /// Writes queue until the end of the loop iteration anyway (one vectored write per burst); kept so a
    /// burst can be written before the iteration ends with `uncork()`.
    package func cork() {}

    /// Writes what is queued now.
    package func uncork() { if queuedBytes > 0 && !isWriteBlocked { flushNow() } }

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

    private func fail(_ cause: ConnectionEnd) {
        guard state != .closed else { return }
        finish(reset: true)
        delegate?.clientClosed(self, cause)
    }

    private func finish(reset: Bool) {
        state = .closed
        head = nil
        guard !isClosed else { return }
        if reset {
            resetSocket()
        } else {
            if queuedBytes > 0 && !isWriteBlocked { flushNow() }
            closeSocket()
        }
    }
}
