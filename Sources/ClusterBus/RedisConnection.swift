import CHiredis
import CLinux
import Glibc
import Runtime
import TLS

/// The name this type had while hiredis's async context was under it; kept so code written against the
/// old name (`evalScript(on:)`, `runHandshake(on:)`, other branches' command files) compiles unchanged.
typealias RedisAsyncConnection = RedisConnection

/// What a connection reports to its owner, on the bus loop thread.
protocol RedisConnectionDelegate: AnyObject {
    /// The connection is gone (refused, reset, EOF, protocol error, TLS failure or our own `close()`); every
    /// pending command has completed with nil first. Called once; the connection takes no more commands.
    func redisConnectionClosed(_ connection: RedisConnection, reason: String)
    /// A pub/sub push (`message`, `smessage`, `subscribe`, … arrays, see `RedisPipeline`). `reply` is valid
    /// only during the call.
    func redisConnection(_ connection: RedisConnection, pushed reply: UnsafePointer<redisReply>)
    /// Redis refused a (un)subscribe command (e.g. `MOVED` for an `SSUBSCRIBE` on the wrong shard).
    func redisConnection(_ connection: RedisConnection, subscriptionRefused error: String)
}

extension RedisConnectionDelegate {
    func redisConnection(_ connection: RedisConnection, subscriptionRefused error: String) {}
}

/// One Redis connection on our event loop: a non-blocking TCP socket (`StreamSocket`, so plain TCP or TLS
/// through its `Transport`) with hiredis used only as the RESP parser (`RedisPipeline`).
///
/// - Commands are queued with `send(_:_:)` and leave with everything else queued in the same loop
///   iteration in one `writev` (the socket's tick-end flush): pipelining and corking for free. Completions
///   run in command order, once each: with the reply, or with nil when the connection goes away first.
/// - Commands may be queued before the TCP connect completes (they wait in the socket's queue: the write
///   gets `EAGAIN` until then and `EPOLLOUT` is armed).
/// - `close()` closes from a fresh loop task (never inside a completion); pending completions get nil,
///   then the delegate hears `redisConnectionClosed`.
///
/// Loop-confined: every method runs on the loop thread of `context`.
final class RedisConnection: StreamSocket, @unchecked Sendable {
    /// `commands`, `subscriber` or a shard name, for logs.
    let role: String
    weak var delegate: RedisConnectionDelegate?
    private let pipeline = RedisPipeline()
    private var closeScheduled = false
    /// Why the connection closed (or `connection closed`): readable in the completions `close` fails.
    private(set) var closeReason = "connection closed"
    private var reported = false
    /// True once bytes moved in either direction (the TCP connect completed).
    private(set) var isConnected = false

    var loop: EventLoop { context.loop }

    private init(context: SocketContext, fd: CInt, transport: any Transport, role: String) {
        self.role = role
        super.init(context: context, fd: fd, transport: transport)
        pipeline.onPush = { [unowned self] reply in delegate?.redisConnection(self, pushed: reply) }
        pipeline.onSubscriptionError = { [unowned self] e in delegate?.redisConnection(self, subscriptionRefused: e) }
    }

    /// Starts a non-blocking connect to `host` (a numeric IPv4 or IPv6 address: names are resolved off the
    /// loop first) and registers the socket. `makeTransport` wraps the fd (plain TCP by default; TLS for
    /// `rediss://`). Errors: `RedisConnectError` naming the failed call (`socket`, `connect`, `epoll_ctl`)
    /// or a transport that could not be created.
    static func open(
        host: String, port: Int, context: SocketContext, role: String,
        makeTransport: (CInt) -> (any Transport)? = { _ in PlainTransport.shared }
    ) -> Result<RedisConnection, RedisConnectError> {
        var storage = sockaddr_storage()
        var length: socklen_t = 0
        var family: CInt = AF_INET
        var v4 = in_addr()
        var v6 = in6_addr()
        if inet_pton(AF_INET, host, &v4) == 1 {
            var a = sockaddr_in()
            a.sin_family = sa_family_t(AF_INET)
            a.sin_port = in_port_t(UInt16(port).bigEndian)
            a.sin_addr = v4
            withUnsafeMutableBytes(of: &storage) { $0.storeBytes(of: a, as: sockaddr_in.self) }
            length = socklen_t(MemoryLayout<sockaddr_in>.size)
        } else if inet_pton(AF_INET6, host, &v6) == 1 {
            var a = sockaddr_in6()
            a.sin6_family = sa_family_t(AF_INET6)
            a.sin6_port = in_port_t(UInt16(port).bigEndian)
            a.sin6_addr = v6
            withUnsafeMutableBytes(of: &storage) { $0.storeBytes(of: a, as: sockaddr_in6.self) }
            length = socklen_t(MemoryLayout<sockaddr_in6>.size)
            family = AF_INET6
        } else {
            return .failure(RedisConnectError("not a numeric address: \(host)"))
        }
        let fd = socket(family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return .failure(RedisConnectError("socket: \(String(cString: strerror(errno)))")) }
        // Commands are small and answered one by one: Nagle would hold a command behind the previous answer.
        try? Socket.setOption(fd, CInt(IPPROTO_TCP), TCP_NODELAY, 1)
        var r: CInt
        repeat {
            r = withUnsafePointer(to: &storage) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, length) } }
        } while r < 0 && errno == EINTR
        if r < 0 && errno != EINPROGRESS {
            let e = errno
            Glibc.close(fd)
            return .failure(RedisConnectError(String(cString: strerror(e))))
        }
        guard let transport = makeTransport(fd) else {
            Glibc.close(fd)
            return .failure(RedisConnectError("cannot create the transport"))
        }
        let conn = RedisConnection(context: context, fd: fd, transport: transport, role: role)
        guard conn.register() else { return .failure(RedisConnectError("epoll_ctl failed")) }
        return .success(conn)
    }

    /// True until the connection closed or a close was requested.
    var isOpen: Bool { !isClosed && !closeScheduled }

    /// Commands sent whose reply has not arrived yet.
    var pendingReplies: Int { pipeline.pendingReplies }

    // MARK: - Commands

    /// Queues `command`; `completion` runs once on the loop thread with the reply, or with nil when the
    /// connection goes away first. Returns false (and never calls `completion`) when the connection is
    /// closed or closing.
    @discardableResult
    func send(_ command: RedisCommand, _ completion: @escaping (RedisReply?) -> Void) -> Bool {
        precondition(command.isComplete, "\(command.name): fewer arguments than announced")
        guard isOpen else { return false }
        pipeline.expectReply(completion)
        write(command)
        return true
    }

    /// Sends `SUBSCRIBE` for `channels`; confirmations and messages arrive through the delegate's `pushed`.
    @discardableResult
    func subscribe(_ channels: [String]) -> Bool { pubsub("SUBSCRIBE", channels) }

    /// Sends `UNSUBSCRIBE` for `channels`; each confirmation arrives through the delegate's `pushed`.
    @discardableResult
    func unsubscribe(_ channels: [String]) -> Bool { pubsub("UNSUBSCRIBE", channels) }

    /// Sends `SSUBSCRIBE` (Redis 7 sharded pub/sub; every channel must hash to one slot owned by this node).
    @discardableResult
    func ssubscribe(_ channels: [String]) -> Bool { pubsub("SSUBSCRIBE", channels) }

    /// Sends `SUNSUBSCRIBE` for `channels`.
    @discardableResult
    func sunsubscribe(_ channels: [String]) -> Bool { pubsub("SUNSUBSCRIBE", channels) }

    private func pubsub(_ verb: String, _ channels: [String]) -> Bool {
        guard isOpen, !channels.isEmpty else { return false }
        var cmd = RedisCommand(verb, argumentCount: channels.count + 1, capacity: channels.reduce(0) { $0 + $1.utf8.count })
        for ch in channels { cmd.append(ch) }
        pipeline.expectSubscription(verb: verb, channels: channels.count)
        write(cmd)
        return true
    }

    private func write(_ command: RedisCommand) {
        let bytes = command.withFormatted { text, length in
            Bytes(count: length) { $0.copyMemory(from: UnsafeRawBufferPointer(start: text, count: length)) }
        }
        enqueueRaw(bytes)
    }

    // MARK: - Closing

    /// Closes from a fresh loop task (never inside a completion). Pending commands complete with nil, then
    /// the delegate hears `redisConnectionClosed`.
    func close() {
        guard !isClosed, !closeScheduled else { return }
        closeScheduled = true
        _ = loop.runAfter(milliseconds: 0) { [self] in closeSocket() }
    }

    /// ``close()``, with `reason` as what the delegate hears (e.g. the node stopped answering).
    func close(reason: String) {
        guard !isClosed, !closeScheduled else { return }
        closeReason = reason
        close()
    }

    // MARK: - Socket hooks

    override func received(_ bytes: UnsafeMutableRawBufferPointer) {
        isConnected = true
        do {
            try pipeline.feed(UnsafeRawBufferPointer(bytes))
        } catch {
            closeReason = error.description
            closeSocket()
        }
    }

    override func didDrain() { isConnected = true }

    override func peerClosed() {
        closeReason = "Server closed the connection"
        closeSocket()
    }

    override func readFailed(errno e: CInt) {
        closeReason = failureText(e)
        closeSocket()
    }

    override func writeFailed(errno e: CInt) {
        closeReason = failureText(e)
        closeSocket()
    }

    /// The TLS transport's own reason when it has one (a certificate that does not match), else the errno's text.
    private func failureText(_ e: CInt) -> String {
        if let tls = transport as? TLSTransport, let why = tls.failureDescription { return why }
        return String(cString: strerror(e))
    }

    override func didClose() {
        guard !reported else { return }
        reported = true
        closeScheduled = true
        pipeline.failAll()
        delegate?.redisConnectionClosed(self, reason: closeReason)
    }
}

/// A connect that failed before any I/O (bad address, out of descriptors).
struct RedisConnectError: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}
