import Runtime

/// The life of one Redis connection (commands or subscriber) as a state machine with no I/O and no
/// clock of its own (Hummingbird style): the owner feeds it events with the current monotonic time and
/// performs the `Action` it returns; `nextDeadline` tells the owner when to call `timerFired(now:)`.
///
/// ```
///   idle ──start──▶ connecting ──handshakeCompleted──▶ ready
///                     │  ▲   (connect deadline)          │
///              failed │  │ timer                  failed │ (lost, canary, error)
///                     ▼  │                               ▼
///                   backingOff ◀─────────────────────────┘
///   any ──stop──▶ stopped
/// ```
/// `connecting` includes the handshake (AUTH, SELECT, CLIENT SETNAME, SCRIPT LOAD): the connection only
/// counts as ready once the server answered all of it, within `connectTimeoutMilliseconds`.
/// Delays come from `RedisBackoff` (full jitter); `failures` counts consecutive failures since the last
/// `ready` and resets there.
public struct RedisConnectionMachine: Sendable, Equatable {
    public enum State: Sendable, Equatable {
        case idle
        /// Attempt in progress; abandoned at `deadline` (monotonic ms).
        case connecting(deadline: UInt64)
        /// Handshake done at `since` (monotonic ms).
        case ready(since: UInt64)
        /// Waiting until `until` (monotonic ms) before the next attempt.
        case backingOff(until: UInt64)
        case stopped
    }

    public enum Action: Sendable, Equatable {
        /// Nothing to do.
        case none
        /// Open a new connection now and start its handshake. `isReconnect` is false only for the very first attempt.
        case connect(isReconnect: Bool)
        /// The handshake completed: the connection is usable.
        case becameReady
        /// Close whatever connection is open (it failed or timed out) and retry after `delayMilliseconds`.
        /// `wasReady` tells whether a ready connection was lost (the bus goes down) or an attempt failed.
        case retry(delayMilliseconds: Int, failures: Int, wasReady: Bool)
        /// Close whatever connection is open for good.
        case close
    }

    public private(set) var state: State = .idle
    /// Consecutive failures since the last `ready` (0 while ready).
    public private(set) var failures = 0
    /// Attempts made so far (the first connect included).
    public private(set) var attempts = 0
    public let backoff: RedisBackoff
    /// Milliseconds an attempt (connect plus handshake) may take.
    public let connectTimeoutMilliseconds: Int

    public init(backoff: RedisBackoff, connectTimeoutMilliseconds: Int = 3000) {
        self.backoff = backoff
        self.connectTimeoutMilliseconds = max(1, connectTimeoutMilliseconds)
    }

    /// When the owner must call `timerFired(now:)` (monotonic ms), or nil.
    public var nextDeadline: UInt64? {
        switch state {
        case .connecting(let d): return d
        case .backingOff(let u): return u
        case .idle, .ready, .stopped: return nil
        }
    }

    public var isReady: Bool { if case .ready = state { return true } else { return false } }

    /// First connect.
    public mutating func start(now: UInt64) -> Action {
        guard case .idle = state else { return .none }
        return beginAttempt(now: now)
    }

    /// The server answered the whole handshake.
    public mutating func handshakeCompleted(now: UInt64) -> Action {
        guard case .connecting = state else { return .none }
        state = .ready(since: now)
        failures = 0
        return .becameReady
    }

    /// The connection failed: refused, closed by the server, handshake error, or the owner gave up on it
    /// (canary late). Idempotent: a failure reported while already backing off or stopped is ignored, so the
    /// close notification that follows a forced close does not count twice.
    /// - Parameter jitter: uniform random value in `0..<1` for the backoff.
    public mutating func failed(now: UInt64, jitter: Double) -> Action {
        let wasReady: Bool
        switch state {
        case .connecting: wasReady = false
        case .ready: wasReady = true
        case .idle, .backingOff, .stopped: return .none
        }
        failures += 1
        let delay = backoff.delay(failures: failures, jitter: jitter)
        state = .backingOff(until: now + UInt64(delay))
        return .retry(delayMilliseconds: delay, failures: failures, wasReady: wasReady)
    }

    /// A deadline passed: a connect attempt timed out (treated as a failure) or the backoff is over.
    public mutating func timerFired(now: UInt64, jitter: Double) -> Action {
        switch state {
        case .connecting(let deadline):
            guard now >= deadline else { return .none }
            return failed(now: now, jitter: jitter)
        case .backingOff(let until):
            guard now >= until else { return .none }
            return beginAttempt(now: now)
        case .idle, .ready, .stopped:
            return .none
        }
    }

    /// Stops for good (node shutdown).
    public mutating func stop() -> Action {
        if case .stopped = state { return .none }
        state = .stopped
        return .close
    }

    private mutating func beginAttempt(now: UInt64) -> Action {
        attempts += 1
        state = .connecting(deadline: now + UInt64(connectTimeoutMilliseconds))
        return .connect(isReconnect: attempts > 1)
    }
}
