import Foundation
import Protocol
import Synchronization

/// The in-process bus for a single node (the embedded default when no `--redis-url` is given).
///
/// Same contract as `RedisBus`: offsets with an epoch (random per process, since the history lives in
/// memory), a bounded per-room history (`historySize` messages) for resume, presence counts and publish.
/// Delivery happens inside the publish lock so concurrent publishers on different loops are seen by every
/// member in one offset order.
public final class LocalBus: Bus, @unchecked Sendable {
    // A class so the history ring is mutated in place (a struct copied out of the dictionary would copy it).
    private final class Room {
        var nextSequence: UInt64 = 0
        var history: [BusMessage] = []
        var historyStart = 0   // ring start index once history is full
        var subscribed = false
        var members = 0
    }

    private func room(_ rooms: inout [String: Room], _ name: String) -> Room {
        if let r = rooms[name] { return r }
        let r = Room()
        rooms[name] = r
        return r
    }

    private let lock = Mutex<[String: Room]>([:])
    private let epoch: String
    private let historySize: Int
    private let delegateBox = Mutex<BusDelegate?>(nil)

    /// - Parameter historySize: messages kept per room for `join(since:)` (default 1,000; 0 keeps none).
    public init(historySize: Int = 1000) {
        self.historySize = max(0, historySize)
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
        lock.withLock { self.room(&$0, room).subscribed = true }
    }

    public func unsubscribe(room: String) {
        lock.withLock { rooms in
            rooms[room]?.subscribed = false
            if let r = rooms[room], r.members == 0, r.history.isEmpty { rooms[room] = nil }
        }
    }

    public func publish(room: String, data: JSONFragment, completion: @escaping @Sendable (Result<StreamOffset, BusError>) -> Void) {
        let delegate = delegateBox.withLock { $0 }
        let now = wallClockMilliseconds()
        let offset: StreamOffset = lock.withLock { rooms in
            let r = self.room(&rooms, room)
            let offset = StreamOffset(epoch: epoch, milliseconds: 0, sequence: r.nextSequence + 1)
            r.nextSequence += 1
            let message = BusMessage(room: room, offset: offset, data: data, publishedAtMilliseconds: now)
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
        let result: JoinResult = lock.withLock { rooms in
            let r = rooms[room] ?? Room()
            let latest = StreamOffset(epoch: epoch, milliseconds: 0, sequence: r.nextSequence)
            guard let since else { return JoinResult(offset: latest, recovered: false, replay: []) }
            // Another epoch (process restarted) or a position older than what we keep: not recoverable.
            guard since.epoch == epoch, since.sequence <= r.nextSequence else {
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
    private let analytics = Mutex(AnalyticsState())

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
        lock.withLock { rooms in
            self.room(&rooms, room).members = localCount
            if localCount == 0, let r = rooms[room], !r.subscribed, r.history.isEmpty { rooms[room] = nil }
        }
    }

    public func presence(room: String, completion: @escaping @Sendable (Result<Int, BusError>) -> Void) {
        let n = lock.withLock { $0[room]?.members ?? 0 }
        completion(.success(n))
    }
}
