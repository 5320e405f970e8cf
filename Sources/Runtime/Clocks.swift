import Glibc

/// Monotonic clock in nanoseconds (CLOCK_MONOTONIC): durations and latencies within one process.
@inline(__always)
public func monotonicNanoseconds() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
}

/// Monotonic clock in microseconds (CLOCK_MONOTONIC).
@inline(__always)
public func monotonicMicroseconds() -> UInt64 { monotonicNanoseconds() / 1000 }

/// Monotonic clock in milliseconds (CLOCK_MONOTONIC): deadlines and timer wheels.
@inline(__always)
public func monotonicMilliseconds() -> UInt64 { monotonicNanoseconds() / 1_000_000 }

/// Wall clock in milliseconds since the Unix epoch (CLOCK_REALTIME): timestamps compared across nodes.
public func wallClockMilliseconds() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_REALTIME, &ts)
    return UInt64(ts.tv_sec) * 1000 + UInt64(ts.tv_nsec) / 1_000_000
}
