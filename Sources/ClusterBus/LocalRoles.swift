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

/// Analytics of a single node: per-user buckets on this node, events in a bounded in-memory ring.
public final class LocalAnalytics: AnalyticsBus, @unchecked Sendable {
    private struct State {
        var buckets: [String: TokenBucket] = [:]
        var ring: [AnalyticsEvent] = []
        var ringStart = 0
    }
    private let analytics = Lock(State())

    public init() {}

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
                if a.ring.count < cap {
                    a.ring.append(e)
                } else {
                    a.ring[a.ringStart] = e
                    a.ringStart = (a.ringStart + 1) % a.ring.count
                }
            }
        }
    }

    public func recentAnalytics(count: Int, completion: @escaping @Sendable ([AnalyticsEvent]) -> Void) {
        let events: [AnalyticsEvent] = analytics.withLock { a in
            let ordered = Array(a.ring[a.ringStart...] + a.ring[..<a.ringStart])
            return Array(ordered.suffix(max(0, count)))
        }
        completion(events)
    }
}
