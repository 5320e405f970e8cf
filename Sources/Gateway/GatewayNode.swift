import CLinux
import ClusterBus
import COpenSSL
import Foundation
import Glibc
import Protocol
import Runtime
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
    /// 0 serving, 1 waiting for a drain slot, 2 drain delay, 3 closing connections, 4 stopping the bus.
    let drainPhase = Atomic<Int>(0)
    /// Connections closed by the drain so far (for `switchboard_drain_closed_total`).
    let drainClosed = Atomic<Int>(0)
    let apiPublishes = LoopCounterShared()
    /// Sockets on the public port (handshakes included), for `--max-connections`. One atomic add per
    /// accept and per close, never per message.
    let socketCount = Atomic<Int>(0)
    /// Tokens, Origin and per-IP admission (Auth/AuthService.swift).
    let auth: AuthService
    private let startedAt = Date()

    /// True once shutdown (drain) started.
    var isDraining: Bool { draining.load(ordering: .relaxed) }

    /// The node accepts new upgrades (false once shutdown started).
    var isAccepting: Bool { accepting.load(ordering: .relaxed) && !draining.load(ordering: .relaxed) }

    /// Builds the node. `bus` defaults to a `LocalBus` (single node, no Redis).
    public init(config: Config, logger: Logger, bus: Bus? = nil) {
        self.config = config
        self.logger = logger
        self.bus = bus ?? GatewayNode.makeDefaultBus(config: config, logger: logger)
        self.auth = AuthService(config: config)
    }

    /// Creates the loops and listeners, starts the bus and the loop threads. Sets SIGPIPE to ignored for
    /// the process (socket writes use writev(2): a peer that vanished must give EPIPE, not a signal).
    /// Errors: `SyscallError` when a port cannot be bound (e.g. `EADDRINUSE`).
    public func start() throws(SyscallError) {
        _ = signal(SIGPIPE, SIG_IGN)
        let n = min(config.threads, 64)
        hub = Hub(node: self, loopCount: n)
        for i in 0..<n { loops.append(try GatewayLoop(index: i, node: self)) }
        // Bind everything before any thread runs so a bad port fails startup with one clear error.
        var listenFDs: [CInt] = []
        var adminFD: CInt = -1
        do {
            if config.port != 0 {
                // SO_REUSEPORT would let a second node on this port start silently and take a share of its
                // connections (rooms split between processes): a plain bind first fails if anyone listens.
                Glibc.close(try Socket.listen(host: config.host, port: config.port, reusePort: false))
            }
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
        configureRedisBus(publicPort: listenFDs.first.map { Socket.localPort($0) } ?? config.port)
        bus.start(delegate: hub)
        // Before any listener runs: the sockets already listen (the kernel queues connections), and a
        // handshake taken by loop 0 while loop 1 is still being set up must not be answered 503 "shutting
        // down" (seen under TSan, whose slowdown widened that window until /health answered inside it).
        accepting.store(true, ordering: .relaxed)
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
        var fields: [(String, LogValue)] = config.loggable.map { ($0.0, .string($0.1)) }
        fields.append(("bus", .string(config.redisURL == nil ? "local" : "redis")))
        logger.log(.info, "switchboard started", pairs: fields)
        // The URLs to connect to, with the ports actually bound (port 0 picks one).
        func url(_ scheme: String, _ host: String, _ port: Int, _ path: String) -> String {
            "\(scheme)://\(host.contains(":") ? "[\(host)]" : host):\(port)\(path)"
        }
        let wsPort = listenFDs.first.map { Socket.localPort($0) } ?? config.port
        var urls: [(String, LogValue)] = [("ws", .string(url("ws", config.host, wsPort, config.wsPath)))]
        if let echo = config.echoPath { urls.append(("echo", .string(url("ws", config.host, wsPort, echo)))) }
        if adminFD >= 0 { urls.append(("admin", .string(url("http", config.adminHost, Socket.localPort(adminFD), "/")))) }
        logger.log(.info, "listening", pairs: urls)
        for warning in auth.startupWarnings() { logger.warn(warning) }
        let closable = config.drainDeadlineMs - config.drainDelayMs - config.closeTimeoutMs - 500
        if config.drainWindowMs > 0 && closable < config.drainWindowMs * 9 / 10 {
            // The last close handshake must fit before the deadline, so the paced closes get what is left.
            logger.warn("drain window shortened: closes are paced over at most --drain-deadline - --drain-delay - --close-timeout - 0.5s",
                        ["drain_window_ms": .int(config.drainWindowMs), "effective_ms": .int(max(0, closable))])
        }
        if config.redisURL == nil {
            logger.info("single node with the in-process bus (no --redis-url): rooms do not span nodes")
        }
    }

    /// Actual port of the public listener (useful with `--port 0` in tests).
    public var boundPort: Int { loops.first?.listener.map { Socket.localPort($0.fd) } ?? config.port }

    /// Process setup for the `switchboard` executable; call before `start()` so loop threads inherit it
    /// (`start()` itself sets SIGPIPE to ignored): blocks SIGTERM/SIGINT on all threads (`runUntilSignalled`
    /// waits for them), and initialises OpenSSL without its `atexit` cleanup, which would free libcrypto's global state under
    /// a thread still inside it when `exit()` runs (seen as SIGSEGV in libcrypto at the end of a drain).
    public static func blockSignals() {
        _ = OPENSSL_init_crypto(UInt64(OPENSSL_INIT_NO_ATEXIT), nil)
        _ = clinux_block_signals(SIGTERM, SIGINT, 0)
    }

    /// Waits for SIGTERM or SIGINT, then drains (see `drain()`). A second SIGTERM or SIGINT exits at once.
    /// Returns the exit status.
    public func runUntilSignalled() -> Int32 {
        let sig = clinux_wait_signals(SIGTERM, SIGINT, 0)
        logger.info("drain requested", ["signal": .int(Int(sig))])
        let second = Thread {
            let again = clinux_wait_signals(SIGTERM, SIGINT, 0)
            self.logger.warn("second signal: exiting now", ["signal": .int(Int(again))])
            exit(0)
        }
        second.start()
        return drain()
    }

    /// Graceful drain (issue: a rolling deploy loses no message):
    /// 1. `/ready` answers 503 at once; the registry and the control channel say `draining`.
    /// 2. Take a cluster drain slot (`--max-draining`); without one, keep serving (unready) and retry each
    ///    second until the deadline.
    /// 3. After `--drain-delay` the listeners close.
    /// 4. Open connections get `reconnect {after_ms}` (jittered) and close 1012, in batches spread evenly
    ///    over `--drain-window`, never all at once; each close waits for queued messages to flush, bounded
    ///    by the close timeout.
    /// 5. The bus removes presence and the registry entry and announces `node-down`; exit 0 before
    ///    `--drain-deadline`.
    public func drain() -> Int32 {
        draining.store(true, ordering: .relaxed)
        drainPhase.store(1, ordering: .relaxed)
        let start = monotonicMilliseconds()
        let deadline = start + UInt64(config.drainDeadlineMs)
        bus.announceDraining()
        // 2. The cluster-wide slot.
        var slot = false
        while !slot && monotonicMilliseconds() + UInt64(config.drainWindowMs) + 1000 < deadline {
            let got = DispatchSemaphore(value: 0)
            let granted = Atomic<Bool>(false)
            bus.acquireDrainSlot(maxDraining: config.maxDraining, ttlMilliseconds: config.drainDeadlineMs) { ok in
                granted.store(ok, ordering: .relaxed)
                got.signal()
            }
            _ = got.wait(timeout: .now() + .seconds(2))
            slot = granted.load(ordering: .relaxed)
            if !slot {
                logger.rateLimited(.info, "waiting for a drain slot", perSecond: 1, ["max_draining": .int(config.maxDraining)])
                usleep(1_000_000)
            }
        }
        if !slot { logger.warn("no drain slot before the deadline: draining anyway") }
        drainPhase.store(2, ordering: .relaxed)
        logger.info("draining", ["delay_ms": .int(config.drainDelayMs), "window_ms": .int(config.drainWindowMs)])
        // 3. Give the load balancer time to stop routing here (it sees /ready 503).
        sleepUntil(min(monotonicMilliseconds() + UInt64(config.drainDelayMs), deadline))
        for gl in loops { gl.loop.execute { gl.listener?.close() } }
        // 4. Paced closes: each loop closes its share of a snapshot in equal steps of `tick`.
        drainPhase.store(3, ordering: .relaxed)
        let windowStart = monotonicMilliseconds()
        let window = UInt64(max(0, min(config.drainWindowMs, Int(deadline) - Int(windowStart) - config.closeTimeoutMs - 500)))
        let tick: UInt64 = 100
        let plans = loops.map { DrainPlan(loop: $0) }
        for p in plans { p.snapshot() }
        logger.info("closing connections", ["window_ms": .int(Int(window)), "connections": .int(openConnections())])
        while true {
            let now = monotonicMilliseconds()
            let fraction = window == 0 ? 1.0 : min(1.0, Double(now - windowStart + tick) / Double(window))
            for p in plans { p.closeUpTo(fraction: fraction, reconnectJitterMs: Int(min(window, 5000))) }
            if fraction >= 1.0 { break }
            // Nothing left to pace (the listeners are closed, so nothing new arrives): do not sit out the window.
            if openConnections() == 0 { break }
            sleepUntil(now + tick)
        }
        // Wait for the close handshakes (bounded by the close timeout and the deadline).
        var remaining = openConnections()
        while remaining > 0 && monotonicMilliseconds() + 500 < deadline {
            usleep(20_000)
            remaining = openConnections()
        }
        drainPhase.store(4, ordering: .relaxed)
        // 5. Presence, registry, node-down, the slot.
        let stopped = DispatchSemaphore(value: 0)
        bus.shutdown { stopped.signal() }
        let busBudget = Int(deadline) - Int(monotonicMilliseconds()) - 200
        _ = stopped.wait(timeout: .now() + .milliseconds(max(100, min(busBudget, 3000))))
        // Join the loops so that nothing runs handlers while the process exits.
        let joinBy = monotonicMilliseconds() + 2000
        for gl in loops { gl.loop.stopAndWait(timeoutMilliseconds: max(1, Int(joinBy) - Int(monotonicMilliseconds()))) }
        logger.info("switchboard stopped", ["connections_left": .int(remaining), "drain_ms": .int(Int(monotonicMilliseconds() - start)),
                                            "closed": .int(plans.reduce(0) { $0 + $1.closedCount })])
        return 0
    }

    /// Backwards-compatible name for tests and embedders: a drain.
    public func shutdown() -> Int32 { drain() }

    private func sleepUntil(_ t: UInt64) {
        while true {
            let now = monotonicMilliseconds()
            if now >= t { return }
            usleep(UInt32(min(t - now, 200)) * 1000)
        }
    }

    /// Sockets still open on all loops (includes handshakes in progress and closing sockets).
    func openConnections() -> Int {
        var total = 0
        let group = DispatchGroup()
        let counts = Lock<Int>(0)
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
            + "\"dependencies\":{\"bus\":{\"kind\":\"\(config.redisURL == nil ? "local" : "redis")\",\"status\":\"\(busUp ? "up" : "down")\"\(redisReadinessDetail)}}}"
        return (ok, Array(json.utf8))
    }

    /// Serializes a non-upgrade HTTP answer (public and admin port): the hardening headers come from
    /// `HTTPResponse`; `Strict-Transport-Security` is added when `--hsts-max-age` is set.
    func httpAnswer(_ response: HTTPResponse) -> Bytes {
        var r = response
        if config.hstsMaxAge > 0 { r.headers.append(HTTPHeader("Strict-Transport-Security", "max-age=\(config.hstsMaxAge)")) }
        return Bytes(r.serialize())
    }

    func jsonString(_ s: String) -> String { JSONFragment.string(s).description }

    var uptimeSeconds: Double { Date().timeIntervalSince(startedAt) }
}

/// A counter any thread may bump (rare events such as API publishes); an atomic add, not for hot paths.
final class LoopCounterShared: Sendable {
    private let value = Atomic<Int>(0)
    func add(_ n: Int = 1) { value.add(n, ordering: .relaxed) }
    func load() -> Int { value.load(ordering: .relaxed) }
}

/// One loop's share of a drain: a snapshot of its connections, closed progressively on the loop thread.
final class DrainPlan: @unchecked Sendable {
    private let gl: GatewayLoop
    private var targets: [Connection] = []
    private var next = 0
    private let total = Atomic<Int>(0)
    private let closed = Atomic<Int>(0)

    init(loop: GatewayLoop) { gl = loop }

    var closedCount: Int { closed.load(ordering: .relaxed) }

    /// Takes the snapshot on the loop (blocks until it is taken).
    func snapshot() {
        let done = DispatchSemaphore(value: 0)
        gl.loop.execute {
            self.targets = Array(self.gl.connections.values)
            self.total.store(self.targets.count, ordering: .relaxed)
            done.signal()
        }
        done.wait()
    }

    /// Closes connections until `fraction` of the snapshot has been asked to close.
    func closeUpTo(fraction: Double, reconnectJitterMs: Int) {
        gl.loop.execute {
            let goal = min(self.targets.count, Int((Double(self.targets.count) * fraction).rounded(.up)))
            while self.next < goal {
                let c = self.targets[self.next]
                self.next += 1
                if c.drainClose(afterMs: Int.random(in: 0...max(0, reconnectJitterMs))) {
                    self.closed.add(1, ordering: .relaxed)
                    self.gl.node.drainClosed.add(1, ordering: .relaxed)
                }
            }
            if self.next == self.targets.count { self.targets = [] }
        }
    }
}
