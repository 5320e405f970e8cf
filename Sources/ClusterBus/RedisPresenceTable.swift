import Runtime

/// This node's presence per room (member count and the authenticated users among the members), written to
/// Redis batched per loop tick. No I/O.
///
/// Joins and leaves call `set(room:count:)` and `setUser(room:user:present:)` as often as they happen;
/// `flush()` returns each changed room once with its latest count and the users added and removed since the
/// last flush, so a burst of joins costs one presence write per room per tick. `markAllDirty()` after a
/// reconnect rewrites every room with members in full (a Redis restart without persistence lost them).
public struct RedisPresenceTable: Sendable {
    /// One room's write: the count (0 = remove this node's entry and users) and the user changes; with
    /// `replaceUsers` the node's user set is replaced by `added`.
    public struct Write: Sendable, Equatable {
        public var room: String
        public var count: Int
        public var replaceUsers: Bool
        public var added: [String]
        public var removed: [String]

        public init(room: String, count: Int, replaceUsers: Bool, added: [String], removed: [String]) {
            self.room = room
            self.count = count
            self.replaceUsers = replaceUsers
            self.added = added
            self.removed = removed
        }
    }

    private var counts: [String: Int] = [:]
    private var users: [String: Set<String>] = [:]
    /// Per dirty room: user → present, the latest change since the last flush.
    private var userChanges: [String: [String: Bool]] = [:]
    private var fullRewrite: Set<String> = []
    private var dirty: [String] = []
    private var dirtySet: Set<String> = []

    public init() {}

    /// The count last set for `room` (0 when absent).
    public func count(of room: String) -> Int { counts[room] ?? 0 }

    /// True when `flush()` has something to return.
    public var needsFlush: Bool { !dirty.isEmpty }

    private mutating func touch(_ room: String) {
        if dirtySet.insert(room).inserted { dirty.append(room) }
    }

    /// Records the node's member count for `room` (0 removes the entry and the room's users). Returns true
    /// when it changed.
    @discardableResult
    public mutating func set(room: String, count: Int) -> Bool {
        let c = max(0, count)
        guard (counts[room] ?? 0) != c || dirtySet.contains(room) else { return false }
        if c == 0 {
            counts[room] = nil
            users[room] = nil
            userChanges[room] = nil
            // Redis still holds the old user set until a write reaches it: if members come back within
            // this tick, the write must replace the set, not apply deltas to it.
            fullRewrite.insert(room)
        } else {
            counts[room] = c
        }
        touch(room)
        return true
    }

    /// Records that `user` has (`present`) or no longer has a member connection in `room` on this node.
    /// Ignored while the room has no members here (its entry, users included, is removed). Returns true
    /// when it changed.
    @discardableResult
    public mutating func setUser(room: String, user: String, present: Bool) -> Bool {
        guard (counts[room] ?? 0) > 0 else { return false }
        var set = users[room] ?? []
        let changed = present ? set.insert(user).inserted : set.remove(user) != nil
        guard changed else { return false }
        users[room] = set.isEmpty ? nil : set
        userChanges[room, default: [:]][user] = present
        touch(room)
        return true
    }

    /// Rooms changed since the last flush, in change order, each with what to write.
    public mutating func flush() -> [Write] {
        let out = dirty.map { room -> Write in
            let count = counts[room] ?? 0
            if count == 0 { return Write(room: room, count: 0, replaceUsers: true, added: [], removed: []) }
            if fullRewrite.contains(room) {
                return Write(room: room, count: count, replaceUsers: true, added: (users[room] ?? []).sorted(), removed: [])
            }
            let changes = userChanges[room] ?? [:]
            return Write(
                room: room, count: count, replaceUsers: false,
                added: changes.filter { $0.value }.keys.sorted(), removed: changes.filter { !$0.value }.keys.sorted())
        }
        dirty.removeAll(keepingCapacity: true)
        dirtySet.removeAll(keepingCapacity: true)
        userChanges.removeAll(keepingCapacity: true)
        fullRewrite.removeAll(keepingCapacity: true)
        return out
    }

    /// Marks `room` for rewriting in full (a write lost with the connection).
    public mutating func markDirty(_ room: String) {
        fullRewrite.insert(room)
        touch(room)
    }

    /// Marks every room with members for rewriting in full (after a reconnect).
    public mutating func markAllDirty() {
        for room in counts.keys.sorted() { markDirty(room) }
    }
}
