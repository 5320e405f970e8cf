/// This node's member count per room, written to Redis batched per loop tick. No I/O.
///
/// Joins and leaves call `set(room:count:)` as often as they happen; `flush()` returns each changed room
/// once with its latest count, so a burst of joins costs one presence write per room per tick.
/// `markAllDirty()` after a reconnect rewrites every non-zero count (a Redis restart without persistence
/// lost them).
public struct RedisPresenceTable: Sendable {
    private var counts: [String: Int] = [:]
    private var dirty: [String] = []
    private var dirtySet: Set<String> = []

    public init() {}

    /// The count last set for `room` (0 when absent).
    public func count(of room: String) -> Int { counts[room] ?? 0 }

    /// True when `flush()` has something to return.
    public var needsFlush: Bool { !dirty.isEmpty }

    /// Records the node's member count for `room` (0 removes the entry). Returns true when it changed.
    @discardableResult
    public mutating func set(room: String, count: Int) -> Bool {
        let c = max(0, count)
        guard (counts[room] ?? 0) != c || dirtySet.contains(room) else { return false }
        if c == 0 { counts[room] = nil } else { counts[room] = c }
        if dirtySet.insert(room).inserted { dirty.append(room) }
        return true
    }

    /// Rooms whose count changed since the last flush, with the count to write (0 = delete), in change order.
    public mutating func flush() -> [(room: String, count: Int)] {
        let out = dirty.map { ($0, counts[$0] ?? 0) }
        dirty.removeAll(keepingCapacity: true)
        dirtySet.removeAll(keepingCapacity: true)
        return out
    }

    /// Marks `room` for rewriting with its current count (a write lost with the connection).
    public mutating func markDirty(_ room: String) {
        if dirtySet.insert(room).inserted { dirty.append(room) }
    }

    /// Marks every room with members for rewriting (after a reconnect).
    public mutating func markAllDirty() {
        for room in counts.keys.sorted() where dirtySet.insert(room).inserted { dirty.append(room) }
    }
}
