import CLinux
import COpenSSL
import ClusterBus
import Foundation
import Glibc
import Protocol
import Runtime
import Synchronization
import TLS

/// One gateway node: `threads` event loops, each with its own `SO_REUSEPORT` listener, the admin listener
/// on loop 0, the hub and the bus. `start()` binds and runs; `runUntilSignalled()` blocks the main thread in
/// `sigwait` and performs the shutdown.
public final class GatewayNode: @unchecked Sendable {
    public let config: Config
    public let logger: Logger
    /// The cluster bus roles (rooms, presence, registry, analytics) and their lifecycle.
    let services: ClusterServices
    /// Rooms and history (publish, join, subscriptions).
    var rooms: RoomBus { services.rooms }
    /// Cluster-wide presence.
    var presence: PresenceBus { services.presence }
    /// Node registry and drain coordination.
    var registry: NodeRegistry { services.registry }
    /// Analytics budget and stream.
    var analytics: AnalyticsBus { services.analytics }
    private(set) var hub: Hub!
    private(set) var loops: [GatewayLoop] = []
    private let accepting = Atomic<Bool>(false)
    private let draining = Atomic<Bool>(false)
    /// 0 serving, 1 waiting for a drain slot, 2 drain delay, 3 closing connections, 4 stopping the bus
    /// (`DrainMachine.Phase.gauge`), and the phase's name for `/ready`.
    let drainPhase = Atomic<Int>(0)
    let drainPhaseName = Lock<String>(DrainMachine.Phase.serving.rawValue)
    /// Connections closed by the drain so far (for `switchboard_drain_closed_total`).
    let drainClosed = Atomic<Int>(0)
    let apiPublishes = LoopCounterShared()
    /// Sockets on the public port (handshakes included), for `--max-connections`. One atomic add per
    /// accept and per close, never per message.
    let socketCount = Atomic<Int>(0)
    /// Tokens, Origin and per-IP admission (Auth/AuthService.swift).
    let auth: AuthService
    /// Certificate reloads (SIGHUP) that installed new certificates, and those that failed (GatewayNode+TLS.swift).
    let tlsReloads = Atomic<Int>(0)
    let tlsReloadFailures = Atomic<Int>(0)
    /// `--metrics-room-class` gauges (API/RoomClasses.swift).
    let roomClasses: RoomClasses
    /// The application backend (`--proxy-url`; nil: off), API/BackendProxy.swift.
    let proxy: BackendProxy?
    private let startedAt = Date()

    /// True once shutdown (drain) started.
    var isDraining: Bool { draining.load(ordering: .relaxed) }

    /// The node accepts new upgrades (false once shutdown started).
    var isAccepting: Bool { accepting.load(ordering: .relaxed) && !draining.load(ordering: .relaxed) }

    /// Builds the node. `services` defaults to what the flags ask for: Redis with `--redis-url`, else the
    /// in-process bus (`ClusterServices.local`, single node).
    public init(config: Config, logger: Logger, services: ClusterServices? = nil) {
        self.config = config
        self.logger = logger
        self.services = services ?? GatewayNode.makeDefaultBus(config: config, logger: logger)
        self.auth = AuthService(config: config)
        self.roomClasses = RoomClasses(config.api.roomClasses)
        self.proxy = BackendProxy(config: config, loopCount: min(config.threads, 64))
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
        configureRegistry(publicPort: listenFDs.first.map { Socket.localPort($0) } ?? config.port)
        services.control.setControlHandler { [unowned self] command, reply in handleControl(command, reply: reply) }
        services.start(delegate: hub)
        // Before any listener runs: /health answers as soon as loop 0 does, and a client told "healthy" must
        // not get 503 "shutting down" because the other loops were still starting.
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
        fields.append(("bus", .string(Self.busKind(config))))
        logger.log(.info, "switchboard started", pairs: fields)
        logger.log(.info, "listening", pairs: listeningFields())
        warnExpiredCertificates([config.tls, config.adminTLS].compactMap { $0 })
        for warning in auth.startupWarnings() { logger.warn(warning) }
        let closable = config.drainDeadlineMs - config.drainDelayMs - config.closeTimeoutMs - 500
        if config.drainWindowMs > 0 && closable < config.drainWindowMs * 9 / 10 {
            // The last close handshake must fit before the deadline, so the paced closes get what is left.
            logger.warn(
                "drain window shortened: closes are paced over at most --drain-deadline - --drain-delay - --close-timeout - 0.5s",
                ["drain_window_ms": .int(config.drainWindowMs), "effective_ms": .int(max(0, closable))])
        }
        if Self.busKind(config) == "local" {
            logger.info("single node with the in-process bus (no --redis-url): rooms do not span nodes")
        }
    }

    /// Actual port of the public listener (useful with `--port 0` in tests).
    public var boundPort: Int { loops.first?.listener.map { Socket.localPort($0.fd) } ?? config.port }

    /// Process setup for the `switchboard` executable; call before `start()` so loop threads inherit it
    /// (`start()` itself sets SIGPIPE to ignored): blocks SIGTERM/SIGINT/SIGHUP on all threads
    /// (`runUntilSignalled` waits for the first two, its reload thread for SIGHUP), and initialises OpenSSL without its `atexit` cleanup, which would free libcrypto's global state under
    /// a thread still inside it when `exit()` runs (seen as SIGSEGV in libcrypto at the end of a drain).
    public static func blockSignals() {
        _ = OPENSSL_init_crypto(UInt64(OPENSSL_INIT_NO_ATEXIT), nil)
        _ = clinux_block_signals(SIGTERM, SIGINT, SIGHUP)
    }

    /// Waits for SIGTERM or SIGINT, then drains (see `drain()`). A second SIGTERM or SIGINT exits at once.
    /// SIGHUP meanwhile reloads the TLS certificates (`reloadTLS`). Returns the exit status.
    public func runUntilSignalled() -> Int32 {
        startReloadThread()
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

    /// Graceful drain: performs what ``DrainMachine`` says, phase by phase (its doc lists them). Each phase
    /// change is logged and shown in `/ready` (`drain_phase`) and `switchboard_drain_phase`. Returns the exit code.
    public func drain() -> Int32 {
        draining.store(true, ordering: .relaxed)
        let start = monotonicMilliseconds()
        var machine = DrainMachine(
            settings: DrainMachine.Settings(
                delayMs: config.drainDelayMs, windowMs: config.drainWindowMs,
                deadlineMs: config.drainDeadlineMs, closeTimeoutMs: config.closeTimeoutMs),
            now: start)
        var plans: [DrainPlan] = []
        var remaining = 0
        var action = machine.begin()
        var shown = DrainMachine.Phase.serving
        while true {
            if machine.phase != shown {
                shown = machine.phase
                drainPhase.store(shown.gauge, ordering: .relaxed)
                drainPhaseName.withLock { $0 = shown.rawValue }
                logger.info("drain phase", ["phase": .string(shown.rawValue), "elapsed_ms": .int(Int(monotonicMilliseconds() - start))])
            }
            switch action {
            case .announceDraining:
                registry.announceDraining()
            case .requestSlot:
                let got = DispatchSemaphore(value: 0)
                let granted = Atomic<Bool>(false)
                registry.acquireDrainSlot(maxDraining: config.maxDraining, ttlMilliseconds: config.drainDeadlineMs) { ok in
                    granted.store(ok, ordering: .relaxed)
                    got.signal()
                }
                _ = got.wait(timeout: .now() + .seconds(2))
                let ok = granted.load(ordering: .relaxed)
                if !ok { logger.rateLimited(.info, "waiting for a drain slot", perSecond: 1, ["max_draining": .int(config.maxDraining)]) }
                machine.slotAnswered(ok, now: monotonicMilliseconds())
            case .drainWithoutSlot:
                logger.warn("no drain slot before the deadline: draining anyway")
            case .wait(let until):
                sleepUntil(until)
            case .closeListeners(let windowMs):
                for gl in loops { gl.loop.execute { gl.listener?.close() } }
                plans = loops.map { DrainPlan(loop: $0) }
                for p in plans { p.snapshot() }
                logger.info("closing connections", ["window_ms": .int(windowMs), "connections": .int(openConnections())])
            case .closeConnections(let fraction):
                let jitter = min(config.drainWindowMs, 5000)
                for p in plans { p.closeUpTo(fraction: fraction, reconnectJitterMs: jitter) }
            case .stopBus:
                remaining = openConnections()
                let stopped = DispatchSemaphore(value: 0)
                services.shutdown { stopped.signal() }
                let busBudget = Int(machine.deadline) - Int(monotonicMilliseconds()) - 200
                _ = stopped.wait(timeout: .now() + .milliseconds(max(100, min(busBudget, 3000))))
            case .finished:
                // Join the loops so that nothing runs handlers while the process exits.
                let joinBy = monotonicMilliseconds() + 2000
                for gl in loops { gl.loop.stopAndWait(timeoutMilliseconds: max(1, Int(joinBy) - Int(monotonicMilliseconds()))) }
                logger.info(
                    "switchboard stopped",
                    [
                        "connections_left": .int(remaining), "drain_ms": .int(Int(monotonicMilliseconds() - start)),
                        "closed": .int(plans.reduce(0) { $0 + $1.closedCount })
                    ])
                return 0
            }
            action = machine.next(now: monotonicMilliseconds(), openConnections: openConnections)
        }
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
        let phase = drainPhaseName.withLock { $0 }
        let json =
            "{\"status\":\"\(ok ? "ready" : "not_ready")\",\"node\":\(jsonString(config.nodeID)),\"accepting\":\(acc && !drain),\"draining\":\(drain),"
            + "\"drain_phase\":\"\(phase)\","
            + "\"dependencies\":{\"bus\":{\"kind\":\"\(Self.busKind(config))\",\"status\":\"\(busUp ? "up" : "down")\"\(busReadinessDetail)}}}"
        return (ok, Array(json.utf8))
    }

    /// Serializes a non-upgrade HTTP answer (public and admin port): the hardening headers come from
    /// `HTTPResponse`; `Strict-Transport-Security` is added when `--hsts-max-age` is set, and always on an
    /// answer sent over HTTPS (`https`; RFC 6797 §7.1), with one year when `--hsts-max-age` is 0.
    func httpAnswer(_ response: HTTPResponse, https: Bool = false) -> Bytes {
        var r = response
        if config.hstsMaxAge > 0 || https {
            r.headers.append(HTTPHeader("Strict-Transport-Security", "max-age=\(config.hstsMaxAge > 0 ? config.hstsMaxAge : 31_536_000)"))
        }
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
