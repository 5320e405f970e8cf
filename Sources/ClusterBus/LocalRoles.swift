import Protocol
import Runtime
import Synchronization

/// In-process presence of a single node: the node's own member counts and users are the cluster's.
public final class LocalPresence: PresenceBus, @unchecked Sendable {
    private struct Entry {
        var members = 0
        var users: Set<String> = []
    }
    private let rooms = Lock<[String: Entry]>([:])

    public init() {}

    public func setPresence(room: String, localCount: Int) {
        rooms.withLock { rooms in
            if localCount <= 0 {
                rooms[room] = nil
            } else {
                rooms[room, default: Entry()].members = localCount
            }
        }
    }

    public func setPresenceUser(room: String, user: String, present: Bool) {
        rooms.withLock { rooms in
            guard rooms[room] != nil else { return }
            if present { rooms[room]!.users.insert(user) } else { rooms[room]!.users.remove(user) }
        }
    }

    public func presence(room: String, completion: @escaping @Sendable (Result<PresenceCount, BusError>) -> Void) {
        let n = rooms.withLock { rooms in
            PresenceCount(connections: rooms[room]?.members ?? 0, users: rooms[room]?.users.count ?? 0)
        }
        completion(.success(n))
    }
}

/// The registry of a single node: nobody to tell about a drain, never a wait for a slot, no detail.
public final class LocalRegistry: NodeRegistry, @unchecked Sendable {
    public init() {}
    public func setNodeInfoProvider(_ provider: @escaping @Sendable () -> NodeInfo) {}
    public func announceDraining() {}
    public func acquireDrainSlot(maxDraining: Int, ttlMilliseconds: Int, completion: @escaping @Sendable (Bool) -> Void) { completion(true) }
    public func releaseDrainSlot() {}
    public var readinessDetail: (name: String, json: String)? { nil }
    public func writeMetrics(to writer: inout PrometheusWriter) {}
}

/// Analytics of a single node: per-user buckets on this node, events in an in-memory ring bounded by
/// count (`appendAnalytics`'s `maxLength`, `--analytics-stream-size`) and by bytes (`maxBytes`,
/// `--analytics-bytes`), the oldest events dropped first.
public final class LocalAnalytics: AnalyticsBus, @unchecked Sendable {
    /// What one event is counted as against `maxBytes`: its user, node, room, event name and data, plus
    /// this fixed overhead (the `AnalyticsEvent` value, its string headers, the ring slot).
    public static let overheadBytesPerEvent = 128

    /// The bytes one event counts for in the ring's budget.
    public static func cost(of e: AnalyticsEvent) -> Int {
        e.user.utf8.count + e.node.utf8.count + (e.room?.utf8.count ?? 0) + e.event.utf8.count
            + (e.data?.bytes.count ?? 0) + overheadBytesPerEvent
    }

    private struct State {
        var buckets: [String: TokenBucket] = [:]
        /// Oldest first from `head`; slots before `head` are nil until the next compaction.
        var ring: [AnalyticsEvent?] = []
        var head = 0
        var bytes = 0
        var count: Int { ring.count - head }

        mutating func dropOldest() {
            guard count > 0, let e = ring[head] else { return }
            ring[head] = nil
            head += 1
            bytes -= LocalAnalytics.cost(of: e)
            // Compact once the dropped prefix is half the array: amortized O(1) per event.
            if head >= 32, head * 2 >= ring.count {
                ring.removeFirst(head)
                head = 0
            }
        }
    }
    private let analytics = Lock(State())
    private let maxBytes: Int

    /// - Parameter maxBytes: bytes of events the ring keeps, counted by `cost(of:)` (default 64 MiB;
    ///   0: no byte limit, the count alone applies). An event larger than this is not kept.
    public init(maxBytes: Int = 64 << 20) {
        self.maxBytes = max(0, maxBytes)
    }

    /// Bytes of events held (sum of `cost(of:)`), at most `maxBytes`.
    public var analyticsMemoryBytes: Int { analytics.withLock { $0.bytes } }

    public func takeAnalyticsBudget(user: String, ratePerSecond: Double, burst: Int, completion: @escaping @Sendable (Int?) -> Void) {
        let now = wallClockMilliseconds()
        let wait: Int? = analytics.withLock { a in
            var b = a.buckets[user] ?? TokenBucket(ratePerSecond: ratePerSecond, burst: burst, now: now)
            let r = b.take(now: now)
            a.buckets[user] = b
            // Bound the map: forget full buckets (they behave like new ones) when it grows large.
            if a.buckets.count > 100_000 { a.buckets = a.buckets.filter { $0.key == user } }
            return r
        }
        completion(wait)
    }

    public func appendAnalytics(_ events: [AnalyticsEvent], maxLength: Int) {
        let cap = max(1, maxLength)
        analytics.withLock { a in
            for e in events {
                a.ring.append(e)
                a.bytes += LocalAnalytics.cost(of: e)
                while a.count > cap || (maxBytes > 0 && a.bytes > maxBytes) { a.dropOldest() }
            }
        }
    }

    public func recentAnalytics(count: Int, completion: @escaping @Sendable ([AnalyticsEvent]) -> Void) {
        let events: [AnalyticsEvent] = analytics.withLock { a in
            Array(a.ring[a.head...].suffix(max(0, count)).compactMap { $0 })
        }
        completion(events)
    }
}
