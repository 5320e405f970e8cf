import Runtime

/// Exponential backoff with full jitter for Redis reconnects ("Exponential Backoff And Jitter", AWS
/// Architecture Blog, 2015): the n-th consecutive failure waits a uniformly random time in
/// `0 ... min(cap, base × 2^(n-1))` milliseconds.
///
/// Full jitter spreads the reconnects of many nodes after a Redis restart instead of having them all hit
/// the server on the same beat; the first retry after a blip usually happens within `base`.
/// Defaults: base 100 ms (`--redis-backoff-base`), cap 5 s (`--redis-backoff-cap`).
public struct RedisBackoff: Sendable, Equatable {
    /// Milliseconds; the ceiling of the first retry's delay.
    public var baseMilliseconds: Int
    /// Milliseconds; no delay is longer.
    public var capMilliseconds: Int

    public init(baseMilliseconds: Int = 100, capMilliseconds: Int = 5000) {
        self.baseMilliseconds = max(1, baseMilliseconds)
        self.capMilliseconds = max(self.baseMilliseconds, capMilliseconds)
    }

    /// The upper bound (ms) of the delay after `failures` consecutive failures (1 = the first).
    public func ceiling(failures: Int) -> Int {
        let shift = max(0, failures - 1)
        // base << shift without overflow: stop doubling once past the cap.
        if shift >= 62 || baseMilliseconds > capMilliseconds >> min(shift, 62) { return capMilliseconds }
        return min(capMilliseconds, baseMilliseconds << shift)
    }

    /// The delay (ms) for `failures` consecutive failures; `jitter` is a uniform random value in `0..<1`
    /// (injected so tests are deterministic).
    public func delay(failures: Int, jitter: Double) -> Int {
        let j = jitter.isFinite ? min(max(jitter, 0), 1) : 0
        return Int((Double(ceiling(failures: failures)) * j).rounded(.down))
    }
}
