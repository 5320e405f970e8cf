import Runtime

/// `--metrics-room-class NAME=PATTERN`: per class, the rooms with members on this node and their member
/// connections, kept up to date by the hub on every membership change (no scan at scrape time). Exported
/// as `switchboard_rooms{class}` and `switchboard_room_members{class}`: one series per configured class
/// (at most 32), never one per room. Per node: sum `switchboard_room_members` over nodes for the cluster's
/// members; a room with members on two nodes counts on both in `switchboard_rooms`.
final class RoomClasses: Sendable {
    let names: [String]
    private let patterns: [RoomPattern]
    private let rooms: [LoopCounterShared]
    private let members: [LoopCounterShared]

    init(_ classes: [(name: String, pattern: String)]) {
        let bounded = Array(classes.prefix(32))
        names = bounded.map(\.name)
        patterns = bounded.map { RoomPattern($0.pattern) }
        rooms = bounded.map { _ in LoopCounterShared() }
        members = bounded.map { _ in LoopCounterShared() }
    }

    /// The classes `room` belongs to, bit i for class i (computed once per room, when it gets a member).
    func mask(of room: String) -> UInt32 {
        var m: UInt32 = 0
        for (i, p) in patterns.enumerated() where p.matches(room, user: "") { m |= 1 << UInt32(i) }
        return m
    }

    /// A room of classes `mask` went from `before` to `after` members on this node.
    func count(mask: UInt32, before: Int, after: Int) {
        var m = mask
        while m != 0 {
            let i = m.trailingZeroBitCount
            m &= m - 1
            members[i].add(after - before)
            if before == 0 && after > 0 { rooms[i].add(1) }
            if before > 0 && after == 0 { rooms[i].add(-1) }
        }
    }

    /// Appends the two gauge families (nothing when no class is configured).
    func write(to w: inout PrometheusWriter) {
        guard !names.isEmpty else { return }
        w.family(
            "switchboard_rooms", .gauge, "Rooms with members on this node, by --metrics-room-class.",
            names.indices.map { (labels: "{class=\"\(names[$0])\"}", value: Double(rooms[$0].load())) })
        w.family(
            "switchboard_room_members", .gauge, "Member connections on this node in rooms of each --metrics-room-class.",
            names.indices.map { (labels: "{class=\"\(names[$0])\"}", value: Double(members[$0].load())) })
    }
}
