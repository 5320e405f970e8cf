/// Spaces slot-map refreshes at least `intervalMilliseconds` apart, merging the requests in between into one.
///
/// During a resharding every command for a moved slot answers `MOVED`, and each asks for a refresh: without
/// a limit that is one `CLUSTER SHARDS` (a reply of every node and range) per redirected command. With it,
/// a storm costs at most one refresh per interval: the first request starts one, requests within the
/// interval schedule one at its end (once), and later requests before then join it.
///
/// Sans-I/O: the caller passes the monotonic time, arms the timer `.startAt` names and reports `fired`.
struct RedisRefreshLimiter: Equatable {
    /// What the caller does with a request.
    enum Decision: Equatable {
        /// Start a refresh now (the caller then reports `started`).
        case startNow
        /// Arm a timer for this monotonic time (ms), then call `fired` and start.
        case startAt(UInt64)
        /// A refresh is already scheduled: the request is merged into it.
        case merged
    }

    /// Default 100 ms: a few round trips on a LAN, so a storm is followed closely but costs ≤ 10 refreshes/s.
    let intervalMilliseconds: UInt64
    private var lastStart: UInt64?
    private var scheduled: UInt64?

    init(intervalMilliseconds: UInt64 = 100) {
        self.intervalMilliseconds = intervalMilliseconds
    }

    /// A refresh is wanted at `now`.
    mutating func request(now: UInt64) -> Decision {
        if scheduled != nil { return .merged }
        guard let last = lastStart, now < last + intervalMilliseconds else { return .startNow }
        scheduled = last + intervalMilliseconds
        return .startAt(last + intervalMilliseconds)
    }

    /// A refresh starts at `now` (after `.startNow`, or when the timer of `.startAt` fired).
    mutating func started(now: UInt64) {
        lastStart = now
        scheduled = nil
    }

    /// True while a timer from `.startAt` is pending.
    var isScheduled: Bool { scheduled != nil }
}

/// Decides which repeated problem lines are logged: a line whose text differs from the last one logged for
/// its key, or the same text again after `repeatMilliseconds` (default 30 s), so a broken cluster says
/// what is wrong at once and then about twice a minute, not on every 2 s refresh or every reconnect.
struct RedisLogThrottle {
    let repeatMilliseconds: UInt64
    private var last: [String: (text: String, at: UInt64)] = [:]

    init(repeatMilliseconds: UInt64 = 30_000) {
        self.repeatMilliseconds = repeatMilliseconds
    }

    /// True when `text` for `key` should be logged at `now` (ms, monotonic); records it if so.
    mutating func shouldLog(_ key: String, _ text: String, now: UInt64) -> Bool {
        if let l = last[key], l.text == text, now < l.at + repeatMilliseconds { return false }
        // Bounded: one entry per node and per problem kind; a cluster has few nodes, but stay safe.
        if last.count >= 256 { last = [:] }
        last[key] = (text, now)
        return true
    }

    /// Forgets `key`'s last line (the problem was solved: the next occurrence is logged at once).
    mutating func clear(_ key: String) { last[key] = nil }
}
