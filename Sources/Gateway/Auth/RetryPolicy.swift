import Runtime

/// Retries of one auth backend call: exponential backoff with full jitter (each wait uniform in
/// 0...min(cap, base·2^(n−1)) before retry n; "Exponential Backoff and Jitter", AWS Architecture Blog, 2015),
/// a timeout per attempt and an overall deadline. A value: tests drive it with a seeded generator and a
/// fake clock.
public struct RetryPolicy: Sendable, Equatable {
    /// Retries after the first attempt (`--auth-retries`, default 2: three attempts in all).
    public var retries: Int
    /// Milliseconds, the first retry's ceiling (`--auth-backoff-base`, default 100 ms).
    public var baseMs: Int
    /// Milliseconds, the largest ceiling (`--auth-backoff-cap`, default 2 s).
    public var capMs: Int
    /// Milliseconds one attempt may take, connect to last byte (`--auth-try-timeout`, default 2 s).
    public var tryTimeoutMs: Int
    /// Milliseconds from the first attempt to giving up (`--auth-deadline`, default 5 s).
    public var deadlineMs: Int

    /// A policy; negative values count as 0.
    public init(retries: Int, baseMs: Int, capMs: Int, tryTimeoutMs: Int, deadlineMs: Int) {
        self.retries = max(0, retries)
        self.baseMs = max(0, baseMs)
        self.capMs = max(0, capMs)
        self.tryTimeoutMs = max(1, tryTimeoutMs)
        self.deadlineMs = max(1, deadlineMs)
    }

    /// What to do after a failed attempt.
    public enum Step: Sendable, Equatable {
        /// Wait `afterMs`, then try again with a timeout of `timeoutMs`.
        case retry(afterMs: Int, timeoutMs: Int)
        /// No attempts or time left.
        case giveUp
    }

    /// The ceiling of the wait before retry `n` (1-based): min(cap, base·2^(n−1)).
    public func ceilingMs(beforeRetry n: Int) -> Int {
        let shift = min(max(0, n - 1), 30)
        let (v, overflow) = baseMs.multipliedReportingOverflow(by: 1 << shift)
        return overflow ? capMs : min(capMs, v)
    }

    /// The jittered wait before retry `n`: uniform in 0...ceiling.
    public func backoffMs(beforeRetry n: Int, using rng: inout some RandomNumberGenerator) -> Int {
        let c = ceilingMs(beforeRetry: n)
        return c == 0 ? 0 : Int.random(in: 0...c, using: &rng)
    }

    /// The timeout of the first attempt: the per-try timeout, bounded by the deadline.
    public var firstTimeoutMs: Int { min(tryTimeoutMs, deadlineMs) }

    /// After attempt number `attempt` (1-based) failed at `now`, for a call that started at `startedAt`
    /// (both monotonic ms): retry after a jittered wait when attempts remain and the wait leaves at least
    /// 50 ms (or the whole per-try timeout, if smaller) before the deadline; the retry's timeout is cut to
    /// what is left.
    public func afterFailure(attempt: Int, startedAt: UInt64, now: UInt64, using rng: inout some RandomNumberGenerator) -> Step {
        guard attempt <= retries else { return .giveUp }
        let wait = backoffMs(beforeRetry: attempt, using: &rng)
        let deadline = startedAt + UInt64(deadlineMs)
        let start = now + UInt64(wait)
        guard start < deadline else { return .giveUp }
        let left = Int(deadline - start)
        guard left >= min(50, tryTimeoutMs) else { return .giveUp }
        return .retry(afterMs: wait, timeoutMs: min(tryTimeoutMs, left))
    }
}
