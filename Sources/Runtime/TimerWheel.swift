/// Something a `TimerWheel` can fire. The wheel holds a strong reference until the entry fires or is
/// found stale, so cancellation is O(1): bump the target's generation and the old entry is ignored.
public protocol TimerTarget: AnyObject {
    /// The generation the target's live timer was armed with; entries with another generation are stale.
    var timerGeneration: UInt32 { get }
    /// Called on the loop thread when the deadline passed.
    func timerFired(now: UInt64)
}

/// A hashed timer wheel (Varghese & Lauck): O(1) insert and cancel, one slot visited per tick.
///
/// - Tick: `tickMilliseconds` (default 10 ms); `slotCount` slots (default 4,096, about 41 s at 10 ms).
///   A deadline beyond one revolution waits in its slot and is re-checked each revolution.
/// - Cancellation is lazy (generation check), so a connection re-arming its deadline costs one append.
/// - Loop-confined: not thread-safe, owned by one `EventLoop`.
public struct TimerWheel {
    struct Entry {
        let target: TimerTarget
        let generation: UInt32
        let deadline: UInt64
    }

    private var slots: [[Entry]]
    private let mask: Int
    private let tick: UInt64
    /// The tick index that will be processed next.
    private var cursor: UInt64
    /// Live and stale entries currently stored (for the idle-wait computation).
    public private(set) var count = 0

    /// - Parameters:
    ///   - now: current monotonic time in ms.
    ///   - tickMilliseconds: resolution; deadlines fire up to one tick late, never early.
    ///   - slotCount: power of two.
    public init(now: UInt64, tickMilliseconds: UInt64 = 10, slotCount: Int = 4096) {
        precondition(slotCount > 0 && slotCount & (slotCount - 1) == 0, "slotCount must be a power of two")
        self.slots = Array(repeating: [], count: slotCount)
        self.mask = slotCount - 1
        self.tick = tickMilliseconds
        self.cursor = now / tickMilliseconds
    }

    /// Arms `target` to fire at `deadline` (monotonic ms) if its generation is still `generation` then.
    public mutating func schedule(_ target: TimerTarget, generation: UInt32, deadline: UInt64) {
        // Round up so a timer never fires before its deadline.
        var t = (deadline + tick - 1) / tick
        if t < cursor { t = cursor }
        slots[Int(t & UInt64(mask))].append(Entry(target: target, generation: generation, deadline: deadline))
        count += 1
    }

    /// Milliseconds until the next non-empty slot is due (nil when the wheel is empty); scans at most one revolution.
    public func millisecondsUntilNext(now: UInt64) -> Int? {
        if count == 0 { return nil }
        var t = cursor
        let end = cursor + UInt64(mask + 1)
        while t < end {
            if !slots[Int(t & UInt64(mask))].isEmpty {
                let due = t * tick
                return due > now ? Int(due - now) : 0
            }
            t += 1
        }
        return Int(UInt64(mask + 1) * tick)
    }

    /// Moves every live entry whose deadline is ≤ `now` into `due`, in slot order. The caller fires them
    /// after this returns (a callback may re-arm timers, which mutates the wheel) and re-checks each
    /// generation first, since an earlier callback may have cancelled a later one.
    public mutating func collectExpired(now: UInt64, into due: inout [(target: TimerTarget, generation: UInt32)]) {
        let target = now / tick
        while cursor <= target {
            let index = Int(cursor & UInt64(mask))
            if !slots[index].isEmpty {
                var keep: [Entry] = []
                for e in slots[index] {
                    if e.target.timerGeneration != e.generation { count -= 1; continue }
                    if e.deadline > now { keep.append(e); continue }
                    count -= 1
                    due.append((e.target, e.generation))
                }
                slots[index] = keep
            }
            cursor += 1
        }
    }
}

/// A one-shot closure timer for rare events (bus backoff, drain pacing); connections use their own generation.
public final class ClosureTimer: TimerTarget {
    public private(set) var timerGeneration: UInt32 = 0
    private var action: (() -> Void)?
    init(_ action: @escaping () -> Void) { self.action = action }
    /// Prevents the closure from running; O(1).
    public func cancel() { timerGeneration &+= 1; action = nil }
    public func timerFired(now: UInt64) {
        let a = action
        action = nil
        timerGeneration &+= 1
        a?()
    }
}
