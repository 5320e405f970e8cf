import Foundation
import Protocol
import Runtime

/// The in-process rooms and history of a single node (the embedded default when no `--redis-url` is
/// given); also the lifecycle of `ClusterServices.local`.
///
/// Same contract as `RedisBus` (one contract test runs against both): offsets with an epoch (random per
/// process, since the history lives in memory), a bounded per-room history (`historySize` messages) for
/// resume, and idempotent publishes within a window. A room's offsets also carry the room instance's
/// creation stamp (their entry-ID milliseconds), so a history that expired (`historyTTLMilliseconds` after
/// the last publish, or after its creation when nothing was published) and started again can never be
/// taken for a continuation of the old one. A room instance lives until it expires, whether or not anyone
/// is in it, exactly as the Redis stream a join creates does: an offset taken in an empty room stays
/// valid after its members leave.
/// Delivery happens inside the publish lock so concurrent publishers on different loops are seen by every
/// member in one offset order.
public final class LocalRooms: RoomBus, BusLifecycle, @unchecked Sendable {
    // A class so the history ring is mutated in place (a struct copied out of the dictionary would copy it).
    private final class Room {
        /// Offset milliseconds of this room instance: unique per instance within the process.
        let stamp: UInt64
        var nextSequence: UInt64 = 0
        var history: [BusMessage] = []
        var historyStart = 0   // ring start index once history is full
        var subscribed = false
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
        var idempotency: IdempotencyWindow
    }

    private func isExpired(_ r: Room, now: UInt64) -> Bool {
        historyTTL > 0 && now &- r.lastActivity >= UInt64(historyTTL)
    }

    /// The room, created (or started again, when its history expired) as needed.
    private func room(_ state: inout State, _ name: String, now: UInt64) -> Room {
        if let r = state.rooms[name], !isExpired(r, now: now) { return r }
        state.lastStamp = max(wallClockMilliseconds(), state.lastStamp + 1)
        let r = Room(stamp: state.lastStamp, now: now)
        if let old = state.rooms[name] { r.subscribed = old.subscribed }
        state.rooms[name] = r
        return r
    }

    /// Forgets rooms nobody on this node subscribes whose history expired; at most every quarter TTL (1 s at
    /// least), so the walk over all rooms costs little per call.
    private func sweep(_ state: inout State, now: UInt64) {
        guard historyTTL > 0, now &- state.lastSweep >= UInt64(max(1000, historyTTL / 4)) else { return }
        state.lastSweep = now
        state.rooms = state.rooms.filter { _, r in r.subscribed || !isExpired(r, now: now) }
    }

    private func offset(_ r: Room, sequence: UInt64) -> StreamOffset {
        StreamOffset(epoch: epoch, milliseconds: r.stamp, sequence: sequence)
    }

    /// Rooms held in memory (tests: expired rooms nobody is in are forgotten).
    var roomCount: Int { lock.withLock { $0.rooms.count } }

    private let lock: Lock<State>
    private let epoch: String
    private let historySize: Int
    private let historyTTL: Int
    private let delegateBox = Lock<BusDelegate?>(nil)

    /// - Parameters:
    ///   - historySize: messages kept per room for `join(since:)` (default 1,000; 0 keeps none).
    ///   - historyTTLMilliseconds: a room's history is dropped this long after its last publish (default 24 h;
    ///     0 keeps it while the process runs). Rooms nobody is in are then forgotten, so memory follows the
    ///     rooms in use, not every room ever published to.
    ///   - idempotencyWindowMilliseconds: how long a publish's idempotency key answers its first offset
    ///     (default 2 min; 0 ignores keys). At most 100,000 keys are held; the oldest go first.
    public init(historySize: Int = 1000, historyTTLMilliseconds: Int = 86_400_000, idempotencyWindowMilliseconds: Int = 120_000) {
        self.historySize = max(0, historySize)
        self.historyTTL = max(0, historyTTLMilliseconds)
        self.epoch = String(UInt32.random(in: 1...UInt32.max), radix: 16)
        self.lock = Lock(State(idempotency: IdempotencyWindow(windowMilliseconds: idempotencyWindowMilliseconds)))
    }

    // MARK: BusLifecycle

    public func start(delegate: BusDelegate) {
        delegateBox.withLock { $0 = delegate }
        delegate.busStateChanged(.up)
    }

    public func shutdown(completion: @escaping @Sendable () -> Void) {
        delegateBox.withLock { $0 = nil }
        completion()
    }

    public var state: BusState { .up }

    // MARK: RoomBus

    public func subscribe(room: String) {
        let now = monotonicMilliseconds()
        lock.withLock { self.room(&$0, room, now: now).subscribed = true }
    }

    public func unsubscribe(room: String) {
        // The room instance stays until it expires (its offsets must stay valid for a later resume).
        lock.withLock { $0.rooms[room]?.subscribed = false }
    }

    public func publish(room: String, data: JSONFragment, idempotencyKey: String?,
                        completion: @escaping @Sendable (Result<StreamOffset, BusError>) -> Void) {
        if let key = idempotencyKey, key.utf8.count > maxIdempotencyKeyBytes {
            completion(.failure(.invalid("idempotency key longer than \(maxIdempotencyKeyBytes) bytes")))
            return
        }
        let delegate = delegateBox.withLock { $0 }
        let wallNow = wallClockMilliseconds()
        let now = monotonicMilliseconds()
        let offset: StreamOffset = lock.withLock { state in
            if let key = idempotencyKey, let first = state.idempotency.lookup(room: room, key: key, now: now) { return first }
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
            if let key = idempotencyKey { state.idempotency.store(room: room, key: key, offset: offset, now: now) }
            // Inside the lock: the hub enqueues to loop task queues, which keeps one order per room.
            if r.subscribed { delegate?.busDeliver(message) }
            return offset
        }
        completion(.success(offset))
    }

    public func join(room: String, since: StreamOffset?, completion: @escaping @Sendable (Result<JoinResult, BusError>) -> Void) {
        let now = monotonicMilliseconds()
        let result: JoinResult = lock.withLock { state in
            sweep(&state, now: now)
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
}
