import Synchronization

/// Which plain joins (no `since`) of one room on one loop need the bus (issue 17: a join must not cost a
/// Redis round trip when the node already subscribes to the room).
///
/// While a room has members on a loop, the node's subscription delivers every message of the room to the
/// loop in offset order (after a Redis reconnect the bus back-fills what it missed, still in order), and
/// the fan-out records each one's offset (`LoopRoom.lastOffset`). So once one join of this room was answered
/// by the bus — the bus answers only after the subscription is live — the newest offset this loop saw is a
/// correct `joined` offset for the next plain join: every message after it reaches the new member live, and
/// a resume from it replays exactly what the member missed. It can be older than the newest offset in Redis
/// (a message in flight to this node), never newer, so nothing is skipped.
///
/// - A plain join is answered at once from the loop room when the cache is confirmed (`answer`).
/// - Otherwise the first join asks the bus (`ask`), and the plain joins that arrive before its answer wait for
///   it (`wait`): one bus read per new room per loop, however many clients join it in the same moment.
/// - The confirmation lapses after `maxAgeMilliseconds` (half the history TTL, when there is one: an
///   expired history starts a new epoch, which only the bus knows of), and when the bus goes down
///   (`isBusUp` false: the join then goes to the bus, which refuses it as before).
///
/// A value type fed the loop's clock; `Waiter` is whatever the loop answers (a connection and the frame's id).
struct JoinOffsetCache<Waiter> {
    /// What to do with a plain join.
    enum Decision: Equatable {
        /// Answer `joined` now with the loop room's newest offset.
        case answer
        /// The caller asks the bus; its answer serves every waiter (``answered(now:)``).
        case ask
        /// A bus read for this room is in flight; the join was queued behind it.
        case wait
    }

    /// Monotonic ms of the last bus answer for this room on this loop; nil until one arrived.
    private(set) var confirmedAt: UInt64?
    /// Plain joins waiting for the bus read in flight (the asking join included), in arrival order.
    private(set) var waiters: [Waiter] = []
    /// A bus read for a plain join is in flight.
    private(set) var asking = false
    /// Identifies the read in flight, unique in the process: its answer is for this cache only (a loop room
    /// emptied and made again has a new cache, whose waiters must not take an answer read before its
    /// subscription).
    private(set) var askToken: UInt64 = 0

    /// Decides for one plain join arriving at `now` (monotonic ms). `haveOffset`: the loop room knows an
    /// offset; `maxAgeMilliseconds`: how long a confirmation holds (0: until the bus goes down).
    mutating func plainJoin(_ waiter: Waiter, now: UInt64, haveOffset: Bool, isBusUp: Bool, maxAgeMilliseconds: UInt64) -> Decision {
        if let at = confirmedAt, haveOffset, isBusUp, maxAgeMilliseconds == 0 || now &- at < maxAgeMilliseconds {
            return .answer
        }
        waiters.append(waiter)
        if asking { return .wait }
        asking = true
        askToken = JoinAskTokens.next.add(1, ordering: .relaxed).newValue
        return .ask
    }

    /// The bus answered the read at `now`: returns the waiters to answer (in arrival order) and confirms.
    mutating func answered(now: UInt64) -> [Waiter] {
        confirmedAt = now
        return takeWaiters()
    }

    /// The bus refused the read: returns the waiters to refuse; the next join asks again.
    mutating func failed() -> [Waiter] {
        confirmedAt = nil
        return takeWaiters()
    }

    private mutating func takeWaiters() -> [Waiter] {
        asking = false
        let w = waiters
        waiters = []
        return w
    }
}

/// Process-wide source of ``JoinOffsetCache/askToken`` values.
private enum JoinAskTokens {
    static let next = Atomic<UInt64>(0)
}
