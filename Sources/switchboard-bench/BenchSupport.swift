import CLinux
import Foundation
import Glibc
import Runtime
import SwitchboardClient

// The bench's event loop is `SwitchboardClient.ClientLoop` and its connection class is
// `SwitchboardClient.ClientConnection` (shared with the reconnecting client). Threading rule: everything
// reachable from the loop (connections, groups, publishers, tickers) is confined to the loop thread; the
// scenario code on the main thread reaches it only through `run` / `sync`, which hop onto the loop. That is
// why the loop-confined classes here are `@unchecked Sendable`.

/// Name of the bench's loop thread.
let benchLoopThreadName = "bench-loop"

/// A periodic timer on a timerfd (the loop's timer wheel ticks in 10 ms, too coarse for pacing).
/// `action` gets the number of expirations since the last call. Loop-confined.
final class Ticker: EventHandler, @unchecked Sendable {
    private let bench: ClientLoop
    private var fd: CInt
    private let action: (UInt64) -> Void

    /// Starts firing every `periodNanoseconds` (≥ 50 µs) on `bench`'s loop; call on the loop thread.
    init(_ bench: ClientLoop, periodNanoseconds: UInt64, _ action: @escaping (UInt64) -> Void) {
        self.bench = bench
        self.action = action
        fd = timerfd_create(CLOCK_MONOTONIC, CInt(TFD_NONBLOCK) | CInt(TFD_CLOEXEC))
        precondition(fd >= 0, "timerfd_create failed: errno \(errno)")
        let p = max(periodNanoseconds, 50_000)
        let ts = timespec(tv_sec: Int(p / 1_000_000_000), tv_nsec: Int(p % 1_000_000_000))
        var spec = itimerspec(it_interval: ts, it_value: ts)
        _ = timerfd_settime(fd, 0, &spec, nil)
        do {
            try bench.loop.register(fd: fd, events: EPOLLIN.rawValue, handler: self)
        } catch {
            preconditionFailure("register timerfd: \(error)")
        }
    }

    func handleEvent(_ events: UInt32) {
        var n: UInt64 = 0
        guard read(fd, &n, 8) == 8, n > 0 else { return }
        action(n)
    }

    func cancel() {
        guard fd >= 0 else { return }
        bench.loop.deregister(fd: fd)
        close(fd)
        fd = -1
    }
}

/// Progress lines on stderr (suppressed by `--quiet` and in child processes).
enum Progress {
    nonisolated(unsafe) static var enabled = true
    static func say(_ text: String) {
        guard enabled else { return }
        FileHandle.standardError.write(Data("[bench] \(text)\n".utf8))
    }
}

/// Raises the soft RLIMIT_NOFILE to the hard limit; returns the new soft limit.
@discardableResult
func raiseOpenFileLimit() -> Int {
    var rl = rlimit()
    guard getrlimit(rlimitNoFile, &rl) == 0 else { return 1024 }
    if rl.rlim_cur < rl.rlim_max {
        rl.rlim_cur = rl.rlim_max
        _ = setrlimit(rlimitNoFile, &rl)
    }
    return Int(clamping: rl.rlim_cur)
}

#if os(Linux)
    private let rlimitNoFile = __rlimit_resource_t(RLIMIT_NOFILE.rawValue)
#endif

/// Sleeps the calling (main) thread.
func sleepMilliseconds(_ ms: Int) {
    guard ms > 0 else { return }
    usleep(useconds_t(min(ms, 1000) * 1000))
    if ms > 1000 { sleepMilliseconds(ms - 1000) }
}

/// Polls `condition` every 5 ms until it holds or `timeoutMs` passed; returns whether it held.
func waitUntil(timeoutMs: Int, _ condition: () -> Bool) -> Bool {
    let deadline = monotonicMilliseconds() + UInt64(max(0, timeoutMs))
    while true {
        if condition() { return true }
        if monotonicMilliseconds() >= deadline { return false }
        usleep(5000)
    }
}
