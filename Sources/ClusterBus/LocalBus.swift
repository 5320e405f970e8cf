import Foundation
import Protocol
import Runtime

/// The in-process bus for a single node (the embedded default when no `--redis-url` is given).
///
/// Same contract as `RedisBus`: offsets with an epoch (random per process, since the history lives in
/// memory), a bounded per-room history (`historySize` messages) for resume, presence counts and publish.
/// A room's offsets also carry the room instance's creation stamp (their entry-ID milliseconds), so a
/// history that expired (`historyTTLMilliseconds` after the last publish) and started again can never be
/// taken for a continuation of the old one.
/// Delivery happens inside the publish lock so concurrent publishers on different loops are seen by every
/// member in one offset order.
public final class LocalBus: Bus, @unchecked Sendable {
    // A class so the history ring is mutated in place (a struct copied out of the dictionary would copy it).
    private final class Room {
        /// Offset milliseconds of this room instance: unique per instance within the process.
        let stamp: UInt64
        var nextSequence: UInt64 = 0
        var history: [BusMessage] = []
        var historyStart = 0   // ring start index once history is full
        var subscribed = false
        var members = 0
        var users: Set<String> = []
        /// Monotonic ms of the last publish (or of creation): the history expires a TTL after it.
        var lastActivity: UInt64

        init(stamp: UInt64, now: UInt64) {
            self.stamp = stamp
            lastActivity = now
        }
    }

    private struct State {
        var rooms: [String: Room] = [:]
        var lastStamp: UInt64 = 0
        var lastSweep: UInt64 = 0
    }

    private func isExpired(_ r: Room, now: UInt64) -> Bool {
        historyTTL > 0 && now &- r.lastActivity >= UInt64(historyTTL)
    }

    /// The room, created (or started again, when its history expired) as needed.
    private func room(_ state: inout State, _ name: String, now: UInt64) -> Room {
        if let r = state.rooms[name], !isExpired(r, now: now) { return r }
        state.lastStamp = max(wallClockMilliseconds(), state.lastStamp + 1)
        let r = Room(stamp: state.lastStamp, now: now)
        if let old = state.rooms[name] {
            r.subscribed = old.subscribed
            r.members = old.members
            r.users = old.users
        }
        state.rooms[name] = r
        return r
    }

    /// Forgets rooms nobody is in whose history expired; at most every quarter TTL (1 s at least), so the
    /// walk over all rooms costs little per publish.
    private func sweep(_ state: inout State, now: UInt64) {
        guard historyTTL > 0, now &- state.lastSweep >= UInt64(max(1000, historyTTL / 4)) else { return }
        state.lastSweep = now
        state.rooms = state.rooms.filter { _, r in r.subscribed || r.members > 0 || !isExpired(r, now: now) }
    }

    private func offset(_ r: Room, sequence: UInt64) -> StreamOffset {
        StreamOffset(epoch: epoch, milliseconds: r.stamp, sequence: sequence)
    }

    /// Rooms held in memory (tests: expired rooms nobody is in are forgotten).
    var roomCount: Int { lock.withLock { $0.rooms.count } }

    private let lock = Lock(State())
    private let epoch: String
    private let historySize: Int
    private let historyTTL: Int
    private let delegateBox = Lock<BusDelegate?>(nil)

    /// - Parameters:
    ///   - historySize: messages kept per room for `join(since:)` (default 1,000; 0 keeps none).
    ///   - historyTTLMilliseconds: a room's history is dropped this long after its last publish (default 24 h;
    ///     0 keeps it while the process runs). Rooms nobody is in are then forgotten, so memory follows the
    ///     rooms in use, not every room ever published to.
    public init(historySize: Int = 1000, historyTTLMilliseconds: Int = 86_400_000) {
        self.historySize = max(0, historySize)
        self.historyTTL = max(0, historyTTLMilliseconds)
        self.epoch = String(UInt32.random(in: 1...UInt32.max), radix: 16)
    }

    public func start(delegate: BusDelegate) {
        delegateBox.withLock { $0 = delegate }
        delegate.busStateChanged(.up)
    }

    public func shutdown(completion: @escaping @Sendable () -> Void) {
        delegateBox.withLock { $0 = nil }
        completion()
    }

    public var state: BusState { .up }

    public func subscribe(room: String) {
        let now = monotonicMilliseconds()
        lock.withLock { self.room(&$0, room, now: now).subscribed = true }
    }

    public func unsubscribe(room: String) {
        lock.withLock { state in
            state.rooms[room]?.subscribed = false
            if let r = state.rooms[room], r.members == 0, r.history.isEmpty { state.rooms[room] = nil }
        }
    }

    public func publish(room: String, data: JSONFragment, completion: @escaping @Sendable (Result<StreamOffset, BusError>) -> Void) {
        let delegate = delegateBox.withLock { $0 }
        let wallNow = wallClockMilliseconds()
        let now = monotonicMilliseconds()
        let offset: StreamOffset = lock.withLock { state in
            sweep(&state, now: now)
            let r = self.room(&state, room, now: now)
            r.lastActivity = now
            r.nextSequence += 1
            let offset = self.offset(r, sequence: r.nextSequence)
            let message = BusMessage(room: room, offset: offset, data: data, publishedAtMilliseconds: wallNow)
            if historySize > 0 {
                if r.history.count < historySize {
                    r.history.append(message)
                } else {
                    r.history[r.historyStart] = message
                    r.historyStart = (r.historyStart + 1) % historySize
                }
            }
            // Inside the lock: the hub enqueues to loop task queues, which keeps one order per room.
            if r.subscribed { delegate?.busDeliver(message) }
            return offset
        }
        completion(.success(offset))
    }

    public func join(room: String, since: StreamOffset?, completion: @escaping @Sendable (Result<JoinResult, BusError>) -> Void) {
        let now = monotonicMilliseconds()
        let result: JoinResult = lock.withLock { state in
            // Created here when new, so the offset a join returns stays valid for the first publish.
            let r = self.room(&state, room, now: now)
            let latest = offset(r, sequence: r.nextSequence)
            guard let since else { return JoinResult(offset: latest, recovered: false, replay: []) }
            // Another epoch (process restarted), another room instance (history expired) or a position
            // older than what we keep: not recoverable.
            guard since.epoch == epoch, since.milliseconds == r.stamp, since.sequence <= r.nextSequence else {
                return JoinResult(offset: latest, recovered: false, replay: [])
            }
            let ordered = Array(r.history[r.historyStart...] + r.history[..<r.historyStart])
            let oldestKept = ordered.first?.offset.sequence ?? (r.nextSequence + 1)
            guard since.sequence + 1 >= oldestKept else { return JoinResult(offset: latest, recovered: false, replay: []) }
            return JoinResult(offset: latest, recovered: true, replay: ordered.filter { $0.offset.sequence > since.sequence })
        }
        completion(.success(result))
    }

    // MARK: Analytics: per-user buckets on this node, events in a bounded in-memory ring.

    private struct AnalyticsState {
        var buckets: [String: TokenBucket] = [:]
        var ring: [AnalyticsEvent] = []
        var ringStart = 0
    }
    private let analytics = Lock(AnalyticsState())

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

    public func setPresence(room: String, localCount: Int) {
        let now = monotonicMilliseconds()
        lock.withLock { state in
            let r = self.room(&state, room, now: now)
            r.members = localCount
            if localCount == 0 { r.users = [] }
            if localCount == 0, !r.subscribed, r.history.isEmpty { state.rooms[room] = nil }
        }
    }

    public func setPresenceUser(room: String, user: String, present: Bool) {
        lock.withLock { state in
            guard let r = state.rooms[room] else { return }
            if present { r.users.insert(user) } else { r.users.remove(user) }
        }
    }

    public func presence(room: String, completion: @escaping @Sendable (Result<PresenceCount, BusError>) -> Void) {
        let n = lock.withLock { state in
            PresenceCount(connections: state.rooms[room]?.members ?? 0, users: state.rooms[room]?.users.count ?? 0)
        }
        completion(.success(n))
    }
}
