import CLinux
import ClusterBus
import Foundation
import Glibc
import Protocol
import Synchronization

/// One gateway node: `threads` event loops, each with its own `SO_REUSEPORT` listener, the admin listener
/// on loop 0, the hub and the bus. `start()` binds and runs; `runUntilSignalled()` blocks the main thread in
/// `sigwait` and performs the shutdown.
public final class GatewayNode: @unchecked Sendable {
    public let config: Config
    public let logger: Logger
    let bus: Bus
    private(set) var hub: Hub!
    private(set) var loops: [GatewayLoop] = []
    private let accepting = Atomic<Bool>(false)
    private let draining = Atomic<Bool>(false)
    let apiPublishes = LoopCounterShared()
    /// Sockets on the public port (handshakes included), for `--max-connections`. One atomic add per
    /// accept and per close, never per message.
    let socketCount = Atomic<Int>(0)
    private let startedAt = Date()

    /// True once shutdown (drain) started.
    var isDraining: Bool { draining.load(ordering: .relaxed) }

    /// The node accepts new upgrades (false once shutdown started).
    var isAccepting: Bool { accepting.load(ordering: .relaxed) && !draining.load(ordering: .relaxed) }

    /// Builds the node. `bus` defaults to a `LocalBus` (single node, no Redis).
    public init(config: Config, logger: Logger, bus: Bus? = nil) {
        self.config = config
        self.logger = logger
        self.bus = bus ?? LocalBus(historySize: config.historySize)
    }

    /// Creates the loops and listeners, starts the bus and the loop threads.
    /// Errors: `SyscallError` when a port cannot be bound (e.g. `EADDRINUSE`).
    public func start() throws(SyscallError) {
        let n = min(config.threads, 64)
        hub = Hub(node: self, loopCount: n)
        for i in 0..<n { loops.append(try GatewayLoop(index: i, node: self)) }
        // Bind everything before any thread runs so a bad port fails startup with one clear error.
        var listenFDs: [CInt] = []
        var adminFD: CInt = -1
        do {
            for _ in 0..<n {
                let fd = try Socket.listen(host: config.host, port: config.port, reusePort: true)
                listenFDs.append(fd)
                // Set once on the listener: Linux copies these to every accepted socket (no syscall per accept).
                try Socket.setOption(fd, CInt(IPPROTO_TCP), TCP_NODELAY, 1)
                if config.tcpKeepaliveIdleMs > 0 {
                    try Socket.setOption(fd, SOL_SOCKET, SO_KEEPALIVE, 1)
                    try Socket.setOption(fd, CInt(IPPROTO_TCP), TCP_KEEPIDLE, CInt(max(1, config.tcpKeepaliveIdleMs / 1000)))
                    try Socket.setOption(fd, CInt(IPPROTO_TCP), TCP_KEEPINTVL, CInt(max(1, config.tcpKeepaliveIntervalMs / 1000)))
                    try Socket.setOption(fd, CInt(IPPROTO_TCP), TCP_KEEPCNT, CInt(config.tcpKeepaliveCount))
                }
            }
            if config.adminPort != 0 { adminFD = try Socket.listen(host: config.adminHost, port: config.adminPort, reusePort: false) }
        } catch {
            for fd in listenFDs { close(fd) }
            throw error
        }
        bus.start(delegate: hub)
        for (i, gl) in loops.enumerated() {
            gl.loop.start(name: "loop-\(i)")
            let fd = listenFDs[i]
            let isFirst = i == 0
            let afd = adminFD
            let done = DispatchSemaphore(value: 0)
            gl.loop.execute {
                gl.listener = Listener(fd: fd, loop: gl.loop) { c in Connection(loop: gl, fd: c).start() }
                try? gl.listener?.start()
                if isFirst && afd >= 0 {
                    gl.adminListener = Listener(fd: afd, loop: gl.loop) { c in AdminConnection(loop: gl, fd: c).start() }
                    try? gl.adminListener?.start()
                }
                done.signal()
            }
            done.wait()
        }
        accepting.store(true, ordering: .relaxed)
        var fields: [(String, LogValue)] = config.loggable.map { ($0.0, .string($0.1)) }
        fields.append(("bus", .string(config.redisURL == nil ? "local" : "redis")))
        logger.log(.info, "switchboard started", pairs: fields)
        if config.redisURL == nil {
            logger.info("single node with the in-process bus (no --redis-url): rooms do not span nodes")
        }
    }

    /// Actual port of the public listener (useful with `--port 0` in tests).
    public var boundPort: Int { loops.first?.listener.map { Socket.localPort($0.fd) } ?? config.port }

    /// Blocks SIGTERM/SIGINT/SIGPIPE handling on all threads; call before `start()` so loop threads inherit it.
    public static func blockSignals() {
        signal(SIGPIPE, SIG_IGN)
        _ = clinux_block_signals(SIGTERM, SIGINT, 0)
    }

    /// Waits for SIGTERM or SIGINT, then shuts down: stop accepting (readiness 503), close the listeners,
    /// close every client with 1001 (going away), wait for the sockets to close (at most
    /// `--shutdown-timeout`), stop the bus. A second signal exits at once. Returns the exit status.
    public func runUntilSignalled() -> Int32 {
        let sig = clinux_wait_signals(SIGTERM, SIGINT, 0)
        logger.info("shutdown requested", ["signal": .int(Int(sig))])
        let second = Thread {
            let again = clinux_wait_signals(SIGTERM, SIGINT, 0)
            self.logger.warn("second signal: exiting now", ["signal": .int(Int(again))])
            exit(1)
        }
        second.start()
        return shutdown()
    }

    /// Graceful stop (see `runUntilSignalled`). Returns 0 when every connection closed in time.
    public func shutdown() -> Int32 {
        draining.store(true, ordering: .relaxed)
        let deadline = monotonicMilliseconds() + UInt64(config.shutdownTimeoutMs)
        for gl in loops {
            gl.loop.execute {
                gl.listener?.close()
                for c in Array(gl.connections.values) { c.close(.goingAway, reason: "server shutting down") }
            }
        }
        var remaining = 0
        while monotonicMilliseconds() < deadline {
            remaining = openConnections()
            if remaining == 0 { break }
            usleep(20_000)
        }
        let stopped = DispatchSemaphore(value: 0)
        bus.shutdown { stopped.signal() }
        _ = stopped.wait(timeout: .now() + .seconds(2))
        for gl in loops { gl.loop.stop() }
        logger.info("switchboard stopped", ["connections_left": .int(remaining)])
        return 0
    }

    /// Sockets still open on all loops (includes handshakes in progress and closing sockets).
    func openConnections() -> Int {
        var total = 0
        let group = DispatchGroup()
        let counts = Mutex<Int>(0)
        for gl in loops {
            group.enter()
            gl.loop.execute {
                let n = gl.connections.count
                counts.withLock { $0 += n }
                group.leave()
            }
        }
        if group.wait(timeout: .now() + .seconds(1)) == .timedOut { return Int.max }
        total = counts.withLock { $0 }
        return total
    }

    // MARK: - Health

    /// Liveness: every loop is parked in `epoll_wait` or was awake within the last 5 s.
    func healthReport() -> (Bool, [UInt8]) {
        let now = monotonicMilliseconds()
        var parts: [String] = []
        var ok = true
        for gl in loops {
            let parked = gl.loop.parked.load(ordering: .relaxed)
            let last = gl.loop.lastAwakeMilliseconds.load(ordering: .relaxed)
            let lag = now > last ? Int(now - last) : 0
            let alive = parked || lag < 5000
            ok = ok && alive
            parts.append("{\"loop\":\(gl.loop.index),\"alive\":\(alive),\"lag_ms\":\(parked ? 0 : lag)}")
        }
        let json = "{\"status\":\"\(ok ? "ok" : "stuck")\",\"node\":\(jsonString(config.nodeID)),\"loops\":[\(parts.joined(separator: ","))]}"
        return (ok, Array(json.utf8))
    }

    /// Readiness: accepting, the bus up, not draining.
    func readinessReport() -> (Bool, [UInt8]) {
        let acc = accepting.load(ordering: .relaxed)
        let drain = draining.load(ordering: .relaxed)
        let busUp = hub.busState.load(ordering: .relaxed)
        let ok = acc && !drain && busUp
        let json = "{\"status\":\"\(ok ? "ready" : "not_ready")\",\"node\":\(jsonString(config.nodeID)),\"accepting\":\(acc && !drain),\"draining\":\(drain),"
            + "\"dependencies\":{\"bus\":{\"kind\":\"\(config.redisURL == nil ? "local" : "redis")\",\"status\":\"\(busUp ? "up" : "down")\"}}}"
        return (ok, Array(json.utf8))
    }

    /// Serializes a non-upgrade HTTP answer (public and admin port): the hardening headers come from
    /// `HTTPResponse`; `Strict-Transport-Security` is added when `--hsts-max-age` is set.
    func httpAnswer(_ response: HTTPResponse) -> Bytes {
        var r = response
        if config.hstsMaxAge > 0 { r.headers.append(HTTPHeader("Strict-Transport-Security", "max-age=\(config.hstsMaxAge)")) }
        return Bytes(r.serialize())
    }

    func jsonString(_ s: String) -> String {
        var out = ""
        Logger.appendJSONString(&out, s)
        return out
    }

    var uptimeSeconds: Double { Date().timeIntervalSince(startedAt) }
}

/// A counter any thread may bump (rare events such as API publishes); an atomic add, not for hot paths.
final class LoopCounterShared: Sendable {
    private let value = Atomic<Int>(0)
    func add(_ n: Int = 1) { value.add(n, ordering: .relaxed) }
    func load() -> Int { value.load(ordering: .relaxed) }
}
