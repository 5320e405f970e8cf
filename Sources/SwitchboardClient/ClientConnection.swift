import Gateway
import Glibc
import Protocol

// epoll flags (from <sys/epoll.h>; CLinux is not a dependency of this target).
private let evIn: UInt32 = 0x001
private let evOut: UInt32 = 0x004
private let evErr: UInt32 = 0x008
private let evHup: UInt32 = 0x010
private let evRdHup: UInt32 = 0x2000

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
}

/// One client WebSocket connection on a `ClientLoop`: non-blocking connect, the upgrade from
/// `WebSocketHandshake.clientRequest`, the 101 checked with `isValidServerResponse`, server frames read by
/// `WebSocketReader(role: .client)`, every frame masked, pings answered. Loop-confined; one use only.
///
/// The bench tool's `WSClient` (Sources/switchboard-bench) is the same machine with load-generation extras
/// (source address binding, corking); the two are kept apart so the bench target needs no new dependency.
final class ClientConnection: EventHandler, @unchecked Sendable {
    enum State { case idle, connecting, handshaking, open, closed }

    private let client: ClientLoop
    private(set) var state = State.idle
    private var fd: CInt = -1
    private var key = ""
    private var head: HTTPResponseHeadParser?
    private var reader = WebSocketReader(role: .client, maxMessageSize: 64 << 20)
    private var pending: [UInt8] = []
    private var pendingOffset = 0
    private var writeArmed = false
    /// Called once the 101 checked out.
    var onOpen: (() -> Void)?
    /// One complete text message (bytes valid during the call only).
    var onText: ((UnsafeRawBufferPointer) -> Void)?
    /// The connection ended other than by `abort()`. Called at most once, never from inside `connect`.
    var onEnd: ((ConnectionEnd) -> Void)?

    init(client: ClientLoop) { self.client = client }

    private var pendingBytes: Int { pending.count - pendingOffset }

    func connect(address: sockaddr_in, hostHeader: String, path: String) {
        precondition(state == .idle)
        state = .connecting
        let s = socket(AF_INET, CInt(SOCK_STREAM.rawValue) | CInt(SOCK_NONBLOCK.rawValue) | CInt(SOCK_CLOEXEC.rawValue), 0)
        guard s >= 0 else { return failLater(.connectFailed(errno)) }
        fd = s
        try? Socket.setOption(s, CInt(IPPROTO_TCP), TCP_NODELAY, 1)
        var addr = address
        let r = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(s, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        if r != 0 && errno != EINPROGRESS { return failLater(.connectFailed(errno)) }
        let request = WebSocketHandshake.clientRequest(host: hostHeader, path: path)
        key = request.key
        head = HTTPResponseHeadParser()
        pending = request.bytes
        pendingOffset = 0
        writeArmed = true
        do {
            try client.loop.register(fd: s, events: evIn | evRdHup | evOut, handler: self)
        } catch {
            return failLater(.connectFailed(error.code))
        }
    }

    private func failLater(_ end: ConnectionEnd) {
        if fd >= 0 { Glibc.close(fd); fd = -1 }
        state = .closed
        client.run { [self] in onEnd?(end); onEnd = nil }
    }

    func handleEvent(_ events: UInt32) {
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
        if events & (evIn | evErr | evHup | evRdHup) != 0 { readAvailable() }
    }

    /// Gives up on a connect or upgrade still in progress.
    func timeOut() {
        guard state == .connecting || state == .handshaking else { return }
        fail(.timeout)
    }

    private func readAvailable() {
        let buf = client.readBuffer
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
                return fail(.eof)
            }
        }
    }

    private func received(_ bytes: UnsafeMutableRawBufferPointer) {
        switch state {
        case .handshaking, .connecting:
            let result: HTTPResponseHeadParser.Result
            do {
                result = try head!.feed(UnsafeRawBufferPointer(bytes))
            } catch {
                return fail(.badHandshake)
            }
            guard case .complete(let response, let consumed) = result else { return }
            head = nil
            guard response.status == 101 else { return fail(.handshakeRejected(response.status)) }
            guard WebSocketHandshake.isValidServerResponse(response, forKey: key) else { return fail(.badHandshake) }
            state = .open
            onOpen?()
            if state == .open && consumed < bytes.count {
                feedFrames(UnsafeMutableRawBufferPointer(rebasing: bytes[consumed...]))
            }
        case .open:
            feedFrames(bytes)
        case .idle, .closed:
            return
        }
    }

    private func feedFrames(_ bytes: UnsafeMutableRawBufferPointer) {
        var end: ConnectionEnd?
        do {
            try reader.feed(bytes) { event in
                switch event {
                case .text(let text):
                    self.onText?(text)
                case .binary, .pong:
                    break
                case .ping(let payload):
                    self.sendFrame(.pong, Array(UnsafeRawBufferPointer(payload)))
                case .close(let code, _):
                    end = .serverClosed(code?.rawValue)
                    return false
                }
                return self.state == .open
            }
        } catch {
            end = .protocolError
        }
        guard let end, state == .open else { return }
        if case .serverClosed(let code) = end {
            // Echo the close (RFC 6455 §5.5.1), then FIN so the echo is delivered.
            sendFrame(.close, FrameEncoder.closePayload(code: code.flatMap { CloseCode(rawValue: $0) }))
            finish(reset: false)
            let cb = onEnd
            onEnd = nil
            cb?(end)
        } else {
            fail(end)
        }
    }

    /// Sends one text message (one masked frame). Ignored unless open.
    func sendText(_ text: [UInt8]) { sendFrame(.text, text) }

    private func sendFrame(_ opcode: Opcode, _ payload: [UInt8]) {
        guard state == .open else { return }
        let frame = payload.withUnsafeBytes { FrameEncoder.frame(opcode: opcode, payload: $0, maskingKey: client.nextMask()) }
        if pendingBytes > 0 || writeArmed {
            pending.append(contentsOf: frame)
            return
        }
        let n = frame.withUnsafeBytes { Glibc.send(fd, $0.baseAddress!, $0.count, Int32(MSG_NOSIGNAL)) }
        if n == frame.count { return }
        if n < 0 {
            let e = errno
            guard e == EAGAIN || e == EWOULDBLOCK || e == EINTR else { return fail(.eof) }
            pending = frame
        } else {
            pending = Array(frame[n...])
        }
        pendingOffset = 0
        armWrite(true)
    }

    private func flush() {
        while pendingBytes > 0 {
            let n = pending.withUnsafeBytes { Glibc.send(fd, $0.baseAddress! + pendingOffset, $0.count - pendingOffset, Int32(MSG_NOSIGNAL)) }
            if n < 0 {
                let e = errno
                if e == EINTR { continue }
                if e == EAGAIN || e == EWOULDBLOCK { return armWrite(true) }
                return fail(.eof)
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
        client.loop.modify(fd: fd, events: evIn | evRdHup | (on ? evOut : 0))
    }

    /// Closes at once (RST, no close handshake, no `onEnd`).
    func abort() {
        onEnd = nil
        finish(reset: true)
    }

    /// Sends a close frame (1000) and closes; no `onEnd`.
    func closeNormally() {
        if state == .open { sendFrame(.close, FrameEncoder.closePayload(code: .normalClosure)) }
        onEnd = nil
        finish(reset: false)
    }

    private func fail(_ end: ConnectionEnd) {
        guard state != .closed else { return }
        finish(reset: true)
        let cb = onEnd
        onEnd = nil
        cb?(end)
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
        client.loop.deregister(fd: fd)
        Glibc.close(fd)
        fd = -1
    }
}
