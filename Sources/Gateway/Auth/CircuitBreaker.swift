import Runtime

/// A circuit breaker for the auth backend, as a value driven by the caller's clock (monotonic ms), so tests
/// run it with a fake one.
///
/// - `closed`: every call goes through; `threshold` consecutive failed attempts (5xx, timeout, refused)
///   open it. A success resets the count.
/// - `open`: calls fail fast (the gateway answers 503 / closes 1013) for `cooldownMs`.
/// - `halfOpen`: after the cooldown one call is let through as a probe; its success closes the breaker,
///   its failure opens it for another cooldown. Others keep failing fast while the probe is out; a probe
///   that reports nothing within the cooldown is presumed lost and another is allowed.
///
/// A 401/403 answer is a success here: the backend is up, it just said no.
public struct CircuitBreaker: Sendable, Equatable {
    /// Where the breaker is.
    public enum State: Int, Sendable, Equatable {
        /// Calls flow (gauge value 0).
        case closed = 0
        /// Calls fail fast (gauge value 1).
        case open = 1
        /// One probe may go (gauge value 2).
        case halfOpen = 2
    }

    /// What one call may do.
    public enum Permission: Sendable, Equatable {
        /// Go ahead (breaker closed).
        case allowed
        /// Go ahead as the half-open probe.
        case probe
        /// Fail fast; the breaker may let a probe through in `retryAfterMs` milliseconds.
        case rejected(retryAfterMs: Int)
    }

    /// Consecutive failures that open the breaker (`--auth-breaker-threshold`, default 5).
    public let threshold: Int
    /// Milliseconds the breaker stays open before probing (`--auth-breaker-cooldown`, default 5 s).
    public let cooldownMs: Int
    /// The current state.
    public private(set) var state = State.closed
    /// Failures counted in `closed`.
    public private(set) var consecutiveFailures = 0
    /// Times the breaker went from closed or half-open to open.
    public private(set) var opens = 0
    private var openUntil: UInt64 = 0
    private var probeStartedAt: UInt64? = nil

    /// A closed breaker; `threshold` ≥ 1.
    public init(threshold: Int, cooldownMs: Int) {
        self.threshold = max(1, threshold)
        self.cooldownMs = max(0, cooldownMs)
    }

    /// Asks to make one attempt at `now`.
    public mutating func acquire(now: UInt64) -> Permission {
        switch state {
        case .closed:
            return .allowed
        case .open:
            guard now >= openUntil else { return .rejected(retryAfterMs: Int(openUntil - now)) }
            state = .halfOpen
            probeStartedAt = now
            return .probe
        case .halfOpen:
            if let started = probeStartedAt, now < started + UInt64(cooldownMs) {
                return .rejected(retryAfterMs: Int(started + UInt64(cooldownMs) - now))
            }
            probeStartedAt = now
            return .probe
        }
    }

    /// Milliseconds until ``acquire(now:)`` could succeed, or nil when it would succeed now. Changes nothing,
    /// so callers can fail fast without taking the half-open probe.
    public func rejection(now: UInt64) -> Int? {
        switch state {
        case .closed: return nil
        case .open: return now >= openUntil ? nil : Int(openUntil - now)
        case .halfOpen:
            guard let started = probeStartedAt, now < started + UInt64(cooldownMs) else { return nil }
            return Int(started + UInt64(cooldownMs) - now)
        }
    }

    /// An attempt got an answer from the backend (200, 401, 403).
    public mutating func recordSuccess(now: UInt64) {
        state = .closed
        consecutiveFailures = 0
        probeStartedAt = nil
    }

    /// An attempt failed (5xx, timeout, refused, malformed answer).
    public mutating func recordFailure(now: UInt64) {
        switch state {
        case .closed:
            consecutiveFailures += 1
            if consecutiveFailures >= threshold { trip(now) }
        case .halfOpen:
            trip(now)
        case .open:
            break  // a late failure of a call started before the breaker opened
        }
    }

    private mutating func trip(_ now: UInt64) {
        state = .open
        opens += 1
        openUntil = now + UInt64(cooldownMs)
        probeStartedAt = nil
        consecutiveFailures = 0
    }
}
