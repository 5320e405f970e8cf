/// The graceful drain after SIGTERM as a value with no I/O (a rolling deploy loses no message):
///
/// 1. `waitingForSlot`: `/ready` answers 503 at once; the registry and the control channel say `draining`;
///    take a cluster drain slot (`--max-draining`), retrying each second while enough time is left.
/// 2. `delaying`: `--drain-delay` for the load balancer to stop routing here, then the listeners close.
/// 3. `closing`: open connections get `reconnect {after_ms}` and close 1012 in steps spread evenly over
///    `--drain-window` (never all at once); it ends early when no connection is left.
/// 4. `awaitingCloses`: the close handshakes finish (bounded by the deadline).
/// 5. `stoppingBus`: presence, registry entry and drain slot are released; then `stopped`, before
///    `--drain-deadline`.
///
/// `GatewayNode.drain()` performs the actions; tests drive the machine with a fake clock. Times are
/// monotonic milliseconds.
struct DrainMachine {
    enum Phase: String, CaseIterable {
        case serving
        case waitingForSlot = "waiting_for_slot"
        case delaying
        case closing
        case awaitingCloses = "awaiting_closes"
        case stoppingBus = "stopping_bus"
        case stopped

        /// The `switchboard_drain_phase` gauge: 0 serving, 1 waiting for a slot, 2 delay, 3 closing, 4 stopping.
        var gauge: Int {
            switch self {
            case .serving: 0
            case .waitingForSlot: 1
            case .delaying: 2
            case .closing, .awaitingCloses: 3
            case .stoppingBus, .stopped: 4
            }
        }
    }

    /// The drain flags (milliseconds).
    struct Settings: Equatable {
        var delayMs: Int
        var windowMs: Int
        var deadlineMs: Int
        var closeTimeoutMs: Int
        /// Pacing step of the closes.
        var tickMs: Int = 100
    }

    /// What the driver must do next.
    enum Action: Equatable {
        /// Mark the node draining in the registry and on the control channel.
        case announceDraining
        /// Ask for a cluster drain slot; report the answer with ``slotAnswered(_:now:)``.
        case requestSlot
        /// Sleep until this time, then call ``next(now:openConnections:)`` again.
        case wait(until: UInt64)
        /// No slot before the deadline allows: drain anyway (log a warning).
        case drainWithoutSlot
        /// Close the listeners and snapshot the connections to close.
        case closeListeners(windowMs: Int)
        /// Ask every loop to have closed this fraction (0...1) of its snapshot.
        case closeConnections(fraction: Double)
        /// Stop the bus (presence, registry, slot) and wait for it, at most until the deadline.
        case stopBus
        /// Done: join the loops and exit 0.
        case finished
    }

    let settings: Settings
    private(set) var phase = Phase.serving
    private(set) var slot = false
    private let start: UInt64
    private var slotAsked = false
    private var retrySlotAt: UInt64 = 0
    private var delayEnds: UInt64 = 0
    private var windowStart: UInt64 = 0
    private var windowMs: UInt64 = 0
    private var closedAllAsked = false
    private var lastWasClose = false

    /// The drain began at `now` (SIGTERM).
    init(settings: Settings, now: UInt64) {
        self.settings = settings
        self.start = now
    }

    var deadline: UInt64 { start + UInt64(settings.deadlineMs) }

    /// The first action: announce, and wait for a slot.
    mutating func begin() -> Action {
        phase = .waitingForSlot
        return .announceDraining
    }

    /// The answer to `.requestSlot`.
    mutating func slotAnswered(_ granted: Bool, now: UInt64) {
        slotAsked = false
        slot = granted
        if !granted { retrySlotAt = now + 1000 }
    }

    /// The next action at `now`; `openConnections` is asked only while closing.
    mutating func next(now: UInt64, openConnections: () -> Int) -> Action {
        switch phase {
        case .serving:
            return begin()
        case .waitingForSlot:
            if slot { return enterDelay(now: now) }
            // A slot is worth waiting for only while the whole window still fits before the deadline.
            guard now + UInt64(settings.windowMs) + 1000 < deadline else {
                _ = enterDelay(now: now)
                return .drainWithoutSlot
            }
            if now < retrySlotAt { return .wait(until: retrySlotAt) }
            slotAsked = true
            return .requestSlot
        case .delaying:
            if now < delayEnds { return .wait(until: delayEnds) }
            phase = .closing
            windowStart = now
            let closable = Int(deadline) - Int(now) - settings.closeTimeoutMs - 500
            windowMs = UInt64(max(0, min(settings.windowMs, closable)))
            lastWasClose = false
            return .closeListeners(windowMs: Int(windowMs))
        case .closing:
            if lastWasClose {
                lastWasClose = false
                // Nothing left to pace (the listeners are closed, so nothing new arrives): do not sit out the window.
                if closedAllAsked || openConnections() == 0 {
                    phase = .awaitingCloses
                    return next(now: now, openConnections: openConnections)
                }
                return .wait(until: now + UInt64(settings.tickMs))
            }
            let tick = UInt64(settings.tickMs)
            let fraction = windowMs == 0 ? 1.0 : min(1.0, Double(now - windowStart + tick) / Double(windowMs))
            closedAllAsked = fraction >= 1.0
            lastWasClose = true
            return .closeConnections(fraction: fraction)
        case .awaitingCloses:
            if now + 500 < deadline && openConnections() > 0 { return .wait(until: now + 20) }
            phase = .stoppingBus
            return .stopBus
        case .stoppingBus:
            phase = .stopped
            return .finished
        case .stopped:
            return .finished
        }
    }

    private mutating func enterDelay(now: UInt64) -> Action {
        phase = .delaying
        delayEnds = min(now + UInt64(settings.delayMs), deadline)
        return .wait(until: delayEnds)
    }
}
