/// Which idempotency keys were published in which room, and at which offset, for a time window: the
/// in-memory counterpart of the publish script's `{prefix}idem:{room} {key}` keys (LocalRooms).
///
/// Bounded twice: entries are forgotten `windowMilliseconds` after they were stored, and when more than
/// `capacity` are held the oldest go first (a retry after that is stored again, as it would be after the
/// window). Not thread-safe: the owner holds its lock. Lookups and stores are O(1) amortized.
public struct IdempotencyWindow: Sendable {
    private struct Key: Hashable, Sendable {
        let room: String
        let key: String
    }

    private var entries: [Key: (offset: StreamOffset, expiry: UInt64)] = [:]
    /// Insertion order with expiries, consumed from `head` (a key stored again after eviction appears twice;
    /// only the record matching the entry's expiry removes it).
    private var order: [(key: Key, expiry: UInt64)] = []
    private var head = 0
    /// How long a key is remembered, in ms (0: never; `lookup` always misses).
    public let windowMilliseconds: Int
    /// Most keys held at once.
    public let capacity: Int

    /// - Parameters:
    ///   - windowMilliseconds: how long a key answers its first offset (0 disables the table).
    ///   - capacity: most keys held (at least 1).
    public init(windowMilliseconds: Int, capacity: Int = 100_000) {
        self.windowMilliseconds = max(0, windowMilliseconds)
        self.capacity = max(1, capacity)
    }

    /// Keys currently held.
    public var count: Int { entries.count }

    /// The offset stored for `key` in `room` when it is within the window. `now`: monotonic ms.
    public mutating func lookup(room: String, key: String, now: UInt64) -> StreamOffset? {
        evict(now: now)
        guard let e = entries[Key(room: room, key: key)], e.expiry > now else { return nil }
        return e.offset
    }

    /// Remembers that `key` was published in `room` at `offset` (a key already held keeps its first offset).
    public mutating func store(room: String, key: String, offset: StreamOffset, now: UInt64) {
        guard windowMilliseconds > 0 else { return }
        let k = Key(room: room, key: key)
        guard entries[k] == nil else { return }
        let expiry = now + UInt64(windowMilliseconds)
        entries[k] = (offset, expiry)
        order.append((k, expiry))
        evict(now: now)
    }

    private mutating func evict(now: UInt64) {
        while head < order.count, order[head].expiry <= now || entries.count > capacity {
            let (k, expiry) = order[head]
            if entries[k]?.expiry == expiry { entries[k] = nil }
            head += 1
        }
        // Reclaim the consumed prefix once it is most of the array (amortized O(1) per entry).
        if head > 1024 && head * 2 > order.count {
            order.removeFirst(head)
            head = 0
        }
    }
}
