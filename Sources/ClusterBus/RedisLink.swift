import CHiredis
import CLinux
import Foundation
import Glibc
import Runtime

/// One logical Redis connection of the bus (commands or subscriber): a `RedisConnectionMachine` plus the
/// I/O it asks for. Opens `RedisConnection`s (our sockets on the bus loop), runs the handshake the owner
/// supplies, arms the machine's deadlines on the loop's timers and reconnects with backoff after every failure.
///
/// Host names are resolved on a short-lived thread (getaddrinfo blocks), never on the loop; numeric
/// addresses connect directly. Loop-confined.
final class RedisLink: RedisConnectionDelegate {
    let role: String
    private let loop: EventLoop
    private let endpoint: RedisEndpoint
    private let clock: () -> UInt64
    private let jitter: () -> Double
    private(set) var machine: RedisConnectionMachine
    /// The connection of the current attempt (nil while backing off).
    private(set) var connection: RedisConnection?
    /// The sockets' shared read buffer and counters (one per link: a link has one socket at a time).
    private let context: SocketContext
    private var cancelTimer: (() -> Void)?
    private var resolvedHost: String?
    private var lastError = ""

    /// Runs the handshake on a fresh connection; call `handshakeSucceeded(_:)` or `fail(_:reason:)` when done.
    var onOpen: (RedisConnection) -> Void = { _ in }
    /// The connection is ready (handshake done).
    var onReady: () -> Void = {}
    /// A ready connection was lost (`wasReady`) or an attempt failed; a retry is scheduled after `delay` ms.
    var onFailure: (_ reason: String, _ wasReady: Bool, _ failures: Int, _ delay: Int) -> Void = { _, _, _, _ in }
    /// A reconnect attempt starts (for metrics).
    var onReconnectAttempt: () -> Void = {}
    /// Pub/sub replies (subscriber connection).
    var onPush: (UnsafePointer<redisReply>) -> Void = { _ in }
    /// Redis refused a (un)subscribe command on the current connection.
    var onSubscriptionRefused: (String) -> Void = { _ in }
    /// Wraps a fresh socket's fd in its transport: plain TCP unless set (TLS for `rediss://`); nil fails the attempt.
    var makeTransport: (CInt) -> (any Transport)? = { _ in PlainTransport.shared }

    init(
        role: String, loop: EventLoop, endpoint: RedisEndpoint, backoff: RedisBackoff, connectTimeoutMilliseconds: Int,
        clock: @escaping () -> UInt64, jitter: @escaping () -> Double
    ) {
        self.role = role
        self.loop = loop
        self.endpoint = endpoint
        self.clock = clock
        self.jitter = jitter
        self.context = SocketContext(loop: loop, readBufferBytes: 64 * 1024)
        self.machine = RedisConnectionMachine(backoff: backoff, connectTimeoutMilliseconds: connectTimeoutMilliseconds)
        if Socket.isNumericAddress(endpoint.host) { resolvedHost = endpoint.host }
    }

    var isReady: Bool { machine.isReady }

    func start() { perform(machine.start(now: clock())) }

    func stop() { perform(machine.stop()) }

    /// The owner's handshake on `conn` completed.
    func handshakeSucceeded(_ conn: RedisConnection) {
        guard conn === connection else { return }
        perform(machine.handshakeCompleted(now: clock()))
    }

    /// Gives up on the current connection (handshake error, canary late, protocol surprise): it is closed
    /// and a reconnect scheduled. Ignored for a connection that is no longer current.
    func fail(_ conn: RedisConnection?, reason: String) {
        if let conn, conn !== connection { return }
        lastError = reason
        perform(machine.failed(now: clock(), jitter: jitter()))
    }

    // MARK: - Performing actions

    private func perform(_ action: RedisConnectionMachine.Action) {
        switch action {
        case .none:
            break
        case .connect(let isReconnect):
            if isReconnect { onReconnectAttempt() }
            openConnection()
        case .becameReady:
            onReady()
        case .retry(let delay, let failures, let wasReady):
            if let c = connection {
                connection = nil
                c.delegate = nil
                c.close()
            }
            onFailure(lastError, wasReady, failures, delay)
        case .close:
            if let c = connection {
                connection = nil
                c.delegate = nil
                c.close()
            }
        }
        armTimer()
    }

    private func armTimer() {
        cancelTimer?()
        cancelTimer = nil
        guard let deadline = machine.nextDeadline else { return }
        let now = clock()
        let delay = deadline > now ? Int(deadline - now) : 0
        cancelTimer = loop.runAfter(milliseconds: delay) { [weak self] in
            guard let self else { return }
            self.cancelTimer = nil
            if case .connecting = self.machine.state { self.lastError = "connect timeout" }
            self.perform(self.machine.timerFired(now: self.clock(), jitter: self.jitter()))
        }
    }

    private func openConnection() {
        guard let host = resolvedHost else {
            resolve()
            return
        }
        switch RedisConnection.open(host: host, port: endpoint.port, context: context, role: role, makeTransport: makeTransport) {
        case .success(let conn):
            connection = conn
            conn.delegate = self
            onOpen(conn)
        case .failure(let e):
            lastError = e.description
            // Let the current action finish arming its timer first.
            _ = loop.runAfter(milliseconds: 0) { [weak self] in
                guard let self else { return }
                self.perform(self.machine.failed(now: self.clock(), jitter: self.jitter()))
            }
        }
    }

    /// Resolves the host name on a helper thread, then connects (or fails the attempt) on the loop.
    private func resolve() {
        let name = endpoint.host
        let port = endpoint.port
        let loop = self.loop
        let box = WeakLinkBox(self)
        Thread.detachNewThread {
            let address = RedisLink.lookup(host: name, port: port)
            loop.execute {
                guard let link = box.link, case .connecting = link.machine.state else { return }
                if let address {
                    // Resolved once per attempt: a DNS change is picked up on the next reconnect.
                    link.resolvedHost = address
                    link.openConnection()
                    link.resolvedHost = nil
                } else {
                    link.lastError = "cannot resolve \(name)"
                    link.perform(link.machine.failed(now: link.clock(), jitter: link.jitter()))
                }
            }
        }
    }

    // MARK: - RedisConnectionDelegate

    func redisConnectionClosed(_ conn: RedisConnection, reason: String) {
        guard conn === connection else { return }
        connection = nil
        lastError = reason
        perform(machine.failed(now: clock(), jitter: jitter()))
    }

    func redisConnection(_ conn: RedisConnection, pushed reply: UnsafePointer<redisReply>) {
        guard conn === connection else { return }
        onPush(reply)
    }

    func redisConnection(_ conn: RedisConnection, subscriptionRefused error: String) {
        guard conn === connection else { return }
        onSubscriptionRefused(error)
    }

    // MARK: - Addresses

    /// getaddrinfo (blocking: helper thread only); the first IPv4 or IPv6 address as text.
    static func lookup(host: String, port: Int) -> String? {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_family = AF_UNSPEC
        var res: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, String(port), &hints, &res) == 0, let first = res else { return nil }
        defer { freeaddrinfo(res) }
        var p: UnsafeMutablePointer<addrinfo>? = first
        while let ai = p {
            var buf = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN) + 1)
            if ai.pointee.ai_family == AF_INET, let sa = ai.pointee.ai_addr {
                var a = sa.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { $0.pointee.sin_addr }
                if inet_ntop(AF_INET, &a, &buf, socklen_t(buf.count)) != nil {
                    return String(decoding: buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
                }
            } else if ai.pointee.ai_family == AF_INET6, let sa = ai.pointee.ai_addr {
                var a = sa.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { $0.pointee.sin6_addr }
                if inet_ntop(AF_INET6, &a, &buf, socklen_t(buf.count)) != nil {
                    return String(decoding: buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
                }
            }
            p = ai.pointee.ai_next
        }
        return nil
    }
}

/// Carries a link reference into a `@Sendable` loop task (the link is loop-confined; the task runs there).
private final class WeakLinkBox: @unchecked Sendable {
    weak var link: RedisLink?
    init(_ link: RedisLink) { self.link = link }
}
