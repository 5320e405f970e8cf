import CLinux
import Glibc
import Runtime
import SwitchboardClient

/// The protocol the bench speaks to the server under test (`--protocol`).
enum WireProtocol: String, Sendable {
    /// Switchboard's room protocol (docs/protocol.md), also spoken by Benchmarks/compare/ws-room-server.js:
    /// members join with a `join` frame, messages arrive in the `message` envelope, the publisher sends
    /// `publish` frames on a WebSocket and reads `ack`s.
    case switchboard
    /// nginx + nchan: members subscribe by URL (`nchan_subscriber websocket`, the channel in the path, no
    /// join and no hello) and each text frame is the published body as is; the publisher POSTs the body to
    /// `nchan_publisher` over HTTP/1.1, and the response (201 Created, or 202 Accepted when the channel has
    /// no subscriber) is the ack.
    case nchan
}

/// What an `HTTPPublishConnection` reports to its owner (the `Publisher`), on the loop thread.
protocol HTTPPublishDelegate: AnyObject {
    /// The TCP connection is up: POSTs may be sent.
    func httpOpened()
    /// The response to the oldest unanswered POST arrived (responses come in request order, RFC 9112 §9.3.2).
    func httpAnswered(status: Int)
    /// The connection ended (not after the owner's `reset()`); unanswered POSTs will get no response.
    func httpClosed(_ cause: ConnectionEnd)
}

/// One keep-alive HTTP/1.1 connection carrying the bench's publishes to nchan as pipelined POSTs: every
/// publish is written at once, without waiting for the responses to the earlier ones (RFC 9112 §9.3.2).
///
/// Pipelining on one connection rather than a pool of connections because the members check the order of
/// what they receive: nginx serves a connection's requests one after the other, so one connection keeps the
/// publishes in sequence order, exactly like Switchboard's single WebSocket publisher with its window of
/// un-acked publishes; POSTs spread over several connections would race each other inside nginx and show up
/// as out-of-order deliveries that are the bench's doing. nginx supports pipelining (it keeps the bytes
/// read past one request for the next); the server must allow enough requests per connection
/// (`keepalive_requests`, 1,000 by default in nginx 1.22; Benchmarks/compare.sh raises it).
///
/// Loop-confined, one use only (the owner makes a new one to reconnect).
final class HTTPPublishConnection: StreamSocket, @unchecked Sendable {
    private weak var delegate: HTTPPublishDelegate?
    /// `POST <path> HTTP/1.1`, `Host` and the start of the `Content-Length` line: the fixed part of every request.
    private let requestHead: [UInt8]
    private var responses = HTTPResponseStream()
    private var connectTimer: ClosureTimer?
    private var connectDeadlineNs: UInt64 = 0
    private var silenced = false
    private(set) var isOpen = false
    /// POSTs written and not yet answered.
    private(set) var unanswered = 0

    /// A connection that will POST to `path` at `endpoint` (its address and `Host`; TLS is not supported).
    init(loop: ClientLoop, delegate: HTTPPublishDelegate, endpoint: Endpoint, path: String) {
        self.delegate = delegate
        requestHead = Array("POST \(path) HTTP/1.1\r\nHost: \(endpoint.hostHeader)\r\nContent-Type: text/plain\r\nContent-Length: ".utf8)
        super.init(context: loop, fd: -1)
    }

    /// Starts a non-blocking connect to `endpoint`; `httpOpened` or `httpClosed` follows on a later
    /// iteration (within `timeoutMs`). Loop thread.
    func connect(_ endpoint: Endpoint, timeoutMs: Int) {
        let s: CInt
        do {
            s = try Socket.startConnect(to: endpoint.address)
        } catch {
            return closeLater(.connectFailed(error.code))
        }
        attach(fd: s)
        guard register() else { return closeLater(.connectFailed(EBADF)) }
        connectDeadlineNs = monotonicNanoseconds() + UInt64(max(0, timeoutMs)) * 1_000_000
        // Nothing is written before the connection is up, so no EPOLLOUT announces it: poll for it on the timer
        // wheel (on loopback it is up at once; this runs once per publisher connection).
        checkConnected()
    }

    private func checkConnected() {
        connectTimer = nil
        guard fd >= 0, !isOpen else { return }
        var p = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
        if poll(&p, 1, 0) > 0 {
            var err: CInt = 0
            var len = socklen_t(MemoryLayout<CInt>.size)
            _ = getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len)
            guard err == 0 else { return fail(.connectFailed(err)) }
            isOpen = true
            context.loop.execute { [self] in if !silenced { delegate?.httpOpened() } }
            return
        }
        guard monotonicNanoseconds() < connectDeadlineNs else { return fail(.timeout) }
        connectTimer = context.loop.schedule(afterMilliseconds: 1) { [weak self] in self?.checkConnected() }
    }

    private func closeLater(_ cause: ConnectionEnd) {
        context.loop.execute { [self] in if !silenced { delegate?.httpClosed(cause) } }
    }

    /// Queues one `POST` of `body` (written at the end of this loop iteration, or at `flushNow()`). Ignored
    /// unless open.
    func post(_ body: [UInt8]) {
        guard isOpen else { return }
        var request = requestHead
        request.reserveCapacity(requestHead.count + 24 + body.count)
        request.append(contentsOf: String(body.count).utf8)
        request.append(contentsOf: [0x0D, 0x0A, 0x0D, 0x0A])
        request.append(contentsOf: body)
        unanswered += 1
        enqueueRaw(Bytes(request))
    }

    override func received(_ bytes: UnsafeMutableRawBufferPointer) {
        var closes = false
        do {
            try responses.feed(UnsafeRawBufferPointer(bytes)) { response in
                unanswered = max(0, unanswered - 1)
                closes = closes || response.closes
                delegate?.httpAnswered(status: response.status)
            }
        } catch {
            return fail(.badResponse)
        }
        // The server answers no more requests on this connection (nginx: `keepalive_requests` reached).
        if closes && isOpen { fail(.serverClosed(nil)) }
    }

    override func peerClosed() { fail(.eof) }
    override func readFailed(errno e: CInt) { fail(isOpen ? .ioError(e) : .connectFailed(e)) }
    override func writeFailed(errno e: CInt) { fail(isOpen ? .ioError(e) : .connectFailed(e)) }

    private func fail(_ cause: ConnectionEnd) {
        guard fd >= 0 else { return }
        finish()
        delegate?.httpClosed(cause)
    }

    /// Closes with RST; no callback follows. Loop thread.
    func reset() {
        silenced = true
        finish()
    }

    private func finish() {
        isOpen = false
        connectTimer?.cancel()
        connectTimer = nil
        resetSocket()
    }
}
