import Foundation
import Protocol
import Runtime

/// The in-process rooms and history of a single node (the embedded default when no `--redis-url` is
/// given); also the lifecycle of `ClusterServices.local`.
///
/// Same contract as `RedisBus` (one contract test runs against both): offsets with an epoch (random per
/// process, since the history lives in memory), a bounded per-room history for resume (`historySize`
/// messages and `historyBytes` bytes per room, `maxHistoryMemory` bytes for the whole node: the least
/// recently published rooms lose history first), and idempotent publishes within a window. A room's
/// offsets also carry the room instance's creation stamp (their entry-ID milliseconds), so a history
/// that expired (`historyTTLMilliseconds` after the last publish, or after its creation when nothing
/// was published) and started again can never be taken for a continuation of the old one. A room
/// instance lives until it expires, whether or not anyone is in it, exactly as the Redis stream a join
/// creates does: an offset taken in an empty room stays valid after its members leave. Delivery happens
/// inside the publish lock so concurrent publishers on different loops are seen by every member in one
/// offset order.
public final class LocalRooms: RoomBus, BusLifecycle, HistoryReader, @unchecked Sendable {
    /// What one stored message is counted as against `--history-bytes` and `--max-history-memory`: its
    /// `data` and room name plus this fixed overhead (the `BusMessage` value, its offset and epoch strings,
    /// the history slot), so a flood of tiny messages is bounded too.
    public static let historyOverheadBytesPerMessage = 128

    /// The bytes one message counts for in the history budgets (see `historyOverheadBytesPerMessage`).
    public static func historyCost(of message: BusMessage) -> Int {
        message.data.bytes.count + message.room.utf8.count + historyOverheadBytesPerMessage
    }

    // A class so the history is mutated in place (a struct copied out of the dictionary would copy it).
    private final class Room {
        /// Offset milliseconds of this room instance: unique per instance within the process.
        let stamp: UInt64
        var nextSequence: UInt64 = 0
        /// Oldest first from `head`; slots before `head` are nil (dropped) until the next compaction, so
        /// dropping the oldest message is O(1) and its bytes are released at once.
        var history: [BusMessage?] = []
        var head = 0
        /// Sum of `historyCost` over the messages kept.
        var bytes = 0
        var subscribed = false
        /// Monotonic ms of the last publish (or of creation): the history expires a TTL after it.
        var lastActivity: UInt64
        /// Links of the node-wide list of rooms holding history, least recently published first (the
        /// order in which `--max-history-memory` drops history). Unlinked whenever the room leaves `rooms`.
        var older: Room?
        var newer: Room?
        var linked = false

        var count: Int { history.count - head }

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
        /// Sum of every room's `bytes`.
        var historyBytes = 0
        /// Messages dropped by the node-wide budget since start.
        var evictions = 0
        var leastRecent: Room?
        var mostRecent: Room?
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
            forget(&state, old)
        }
        state.rooms[name] = r
        return r
    }

    /// Forgets rooms nobody on this node subscribes whose history expired; at most every quarter TTL (1 s at
    /// least), so the walk over all rooms costs little per call.
    private func sweep(_ state: inout State, now: UInt64) {
        guard historyTTL > 0, now &- state.lastSweep >= UInt64(max(1000, historyTTL / 4)) else { return }
        state.lastSweep = now
        var kept: [String: Room] = [:]
        for (name, r) in state.rooms {
            if r.subscribed || !isExpired(r, now: now) { kept[name] = r } else { forget(&state, r) }
        }
        state.rooms = kept
    }

    /// Releases a room's history from the node's accounting (it leaves `rooms` or is replaced).
    private func forget(_ state: inout State, _ r: Room) {
        unlink(&state, r)
        state.historyBytes -= r.bytes
        r.bytes = 0
        r.history = []
        r.head = 0
    }

    private func unlink(_ state: inout State, _ r: Room) {
        guard r.linked else { return }
        if let o = r.older { o.newer = r.newer } else { state.leastRecent = r.newer }
        if let n = r.newer { n.older = r.older } else { state.mostRecent = r.older }
        r.older = nil
        r.newer = nil
        r.linked = false
    }

    /// Moves `r` to the most recently published end of the list.
    private func touch(_ state: inout State, _ r: Room) {
        unlink(&state, r)
        r.older = state.mostRecent
        state.mostRecent?.newer = r
        state.mostRecent = r
        if state.leastRecent == nil { state.leastRecent = r }
        r.linked = true
    }

    private func dropOldest(_ state: inout State, _ r: Room) {
        guard r.count > 0, let m = r.history[r.head] else { return }
        r.history[r.head] = nil
        r.head += 1
        let cost = LocalRooms.historyCost(of: m)
        r.bytes -= cost
        state.historyBytes -= cost
        // Compact once the dropped prefix is at least half the array: amortized O(1) per message.
        if r.head >= 32, r.head * 2 >= r.history.count {
            r.history.removeFirst(r.head)
            r.head = 0
        }
        if r.count == 0 { unlink(&state, r) }
    }

    /// Stores `message` in `r`'s history within the room's budgets (count, bytes), then the node's.
    private func store(_ state: inout State, _ r: Room, _ message: BusMessage) {
        guard historySize > 0 else { return }
        let cost = LocalRooms.historyCost(of: message)
        r.history.append(message)
        r.bytes += cost
        state.historyBytes += cost
        touch(&state, r)
        while r.count > historySize || (historyBytesPerRoom > 0 && r.bytes > historyBytesPerRoom) { dropOldest(&state, r) }
        // Oldest rooms first: the least recently published room loses its oldest messages until the node
        // is back under budget (the room just published is the last to lose anything).
        while maxHistoryMemory > 0, state.historyBytes > maxHistoryMemory, let victim = state.leastRecent {
            dropOldest(&state, victim)
            state.evictions += 1
        }
    }

    private func offset(_ r: Room, sequence: UInt64) -> StreamOffset {
        StreamOffset(epoch: epoch, milliseconds: r.stamp, sequence: sequence)
    }

    /// Rooms held in memory (tests: expired rooms nobody is in are forgotten).
    var roomCount: Int { lock.withLock { $0.rooms.count } }

    /// Bytes of history held by every room (sum of `historyCost(of:)`), at most `maxHistoryMemory`.
    public var historyMemoryBytes: Int { lock.withLock { $0.historyBytes } }

    /// Messages dropped from history by the node-wide `maxHistoryMemory` budget since start (per-room
    /// trimming by count or bytes is the ordinary life of a history and is not counted).
    public var historyEvictions: Int { lock.withLock { $0.evictions } }

    private let lock: Lock<State>
    private let epoch: String
    private let historySize: Int
    private let historyTTL: Int
    private let historyBytesPerRoom: Int
    private let maxHistoryMemory: Int
    private let delegateBox = Lock<BusDelegate?>(nil)

    /// - Parameters:
    ///   - historySize: messages kept per room for `join(since:)` (default 1,000; 0 keeps none).
    ///   - historyTTLMilliseconds: a room's history is dropped this long after its last publish (default 24 h;
    ///     0 keeps it while the process runs). Rooms nobody is in are then forgotten, so memory follows the
    ///     rooms in use, not every room ever published to.
    ///   - idempotencyWindowMilliseconds: how long a publish's idempotency key answers its first offset
    ///     (default 2 min; 0 ignores keys). At most 100,000 keys are held; the oldest go first.
    ///   - historyBytes: bytes of history kept per room (`--history-bytes`, counted by `historyCost(of:)`;
    ///     default 16 MiB; 0: no byte limit, the count alone applies); the oldest messages go first.
    ///   - maxHistoryMemory: bytes of history kept by the whole node (`--max-history-memory`, default
    ///     256 MiB; 0: no limit). Over it, the least recently published room loses its oldest messages
    ///     first, counted in `historyEvictions`; a resume into a dropped range answers `recovered: false`.
    public init(
        historySize: Int = 1000, historyTTLMilliseconds: Int = 86_400_000, idempotencyWindowMilliseconds: Int = 120_000,
        historyBytes: Int = 16 << 20, maxHistoryMemory: Int = 256 << 20
    ) {
        self.historySize = max(0, historySize)
        self.historyTTL = max(0, historyTTLMilliseconds)
        self.historyBytesPerRoom = max(0, historyBytes)
        self.maxHistoryMemory = max(0, maxHistoryMemory)
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

    public func publish(
        room: String, data: JSONFragment, idempotencyKey: String?,
        completion: @escaping @Sendable (Result<StreamOffset, BusError>) -> Void
    ) {
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
            store(&state, r, message)
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
            // Trimmed (count, bytes) or evicted (node budget) past `since`: a gap, never a silent one.
            let oldestKept = r.count > 0 ? r.history[r.head]!.offset.sequence : r.nextSequence + 1
            guard since.sequence + 1 >= oldestKept else { return JoinResult(offset: latest, recovered: false, replay: []) }
            let replay = r.history[r.head...].lazy.compactMap { $0 }.filter { $0.offset.sequence > since.sequence }
            return JoinResult(offset: latest, recovered: true, replay: Array(replay))
        }
        completion(.success(result))
    }

    /// The server API's history read (`HistoryReader`): `from` must be an offset of this room instance.
    public func history(
        room: String, from: StreamOffset?, newestFirst: Bool, limit: Int,
        completion: @escaping @Sendable (Result<HistoryPage, BusError>) -> Void
    ) {
        let now = monotonicMilliseconds()
        let result: Result<HistoryPage, BusError> = lock.withLock { state in
            guard let r = state.rooms[room], !isExpired(r, now: now) else { return .success(HistoryPage(messages: [], latest: nil)) }
            if let from, from.epoch != epoch || from.milliseconds != r.stamp {
                return .failure(.invalid("field 'from' is an offset of an earlier history of this room"))
            }
            let kept = r.history[r.head...].lazy.compactMap { $0 }
            let n = max(0, limit)
            let page: [BusMessage]
            if newestFirst {
                page = Array(kept.reversed().lazy.filter { from == nil || $0.offset.sequence < from!.sequence }.prefix(n))
            } else {
                page = Array(kept.filter { from == nil || $0.offset.sequence > from!.sequence }.prefix(n))
            }
            return .success(HistoryPage(messages: page, latest: r.nextSequence > 0 ? offset(r, sequence: r.nextSequence) : nil))
        }
        completion(result)
    }
}
