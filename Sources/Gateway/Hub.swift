import ClusterBus
import Protocol
import Runtime
import Synchronization

/// The node-level room registry between the event loops and the bus.
///
/// - Knows, per room, which loops have members (a bitmask, so at most 64 loops) and the node's member count.
/// - Subscribes the bus on a room's first member on this node and unsubscribes after its last one leaves;
///   these calls are serialized (`interest` lock) so they reach the bus in the order the counts changed.
/// - Receives bus messages, encodes each once into a WebSocket frame, and queues that same `Bytes` to every
///   loop with members (`EventLoop.execute`: FIFO per loop, so a room's offset order is kept).
///
/// Lock order: `interest` → `rooms`; the bus may hold its own lock while calling `busDeliver`, which takes
/// only `rooms`, and the hub never calls the bus while holding `rooms`.
final class Hub: BusDelegate, @unchecked Sendable {
    struct RoomState {
        var loopMask: UInt64 = 0
        /// The `--metrics-room-class` classes the room belongs to (bit i: class i), set when it is created.
        var classMask: UInt32 = 0
        var perLoop: [Int]
        /// Member connections per authenticated user on this node (presence counts distinct users).
        var users: [String: Int] = [:]
        var total: Int { perLoop.reduce(0, +) }
    }

    /// Rooms with members on this node (read by the server API, GatewayNode+Control.swift).
    let rooms = Lock<[String: RoomState]>([:])
    private let interest = Lock<Void>(())
    /// Rooms whose member count on this node changed since the last presence flush: the newest count. Sent
    /// to the bus once per loop iteration (the end of the iteration of the loop that changed one first), not
    /// per join and leave: on the Redis bus each call is a hop to the bus's thread (issue 17).
    private let pendingPresence = Lock<[String: Int]>([:])
    private unowned(unsafe) let node: GatewayNode
    private let loopCount: Int
    let busState = Atomic<Bool>(false)

    init(node: GatewayNode, loopCount: Int) {
        self.node = node
        self.loopCount = loopCount
    }

    /// Number of rooms with at least one member on this node.
    var roomCount: Int { rooms.withLock { $0.count } }

    /// A loop's member count for `room` changed to `localCount` because a connection of `user` (nil when
    /// not authenticated) joined or left (called on that loop's thread).
    func membersChanged(room: String, loop: Int, localCount: Int, user: String?, joined: Bool) {
        interest.withLock { _ in
            let (before, after, userPresent) = rooms.withLock { map -> (Int, Int, Bool?) in
                var s = map[room] ?? RoomState(classMask: node.roomClasses.mask(of: room), perLoop: Array(repeating: 0, count: loopCount))
                let before = s.total
                s.perLoop[loop] = localCount
                if localCount > 0 { s.loopMask |= (1 << UInt64(loop)) } else { s.loopMask &= ~(1 << UInt64(loop)) }
                // The user's first connection in the room on this node, or its last one gone.
                var userPresent: Bool? = nil
                if let user {
                    let n = (s.users[user] ?? 0) + (joined ? 1 : -1)
                    s.users[user] = n > 0 ? n : nil
                    if joined && n == 1 { userPresent = true } else if !joined && n == 0 { userPresent = false }
                }
                let after = s.total
                if s.classMask != 0 { node.roomClasses.count(mask: s.classMask, before: before, after: after) }
                map[room] = after == 0 ? nil : s
                return (before, after, userPresent)
            }
            if before == 0 && after > 0 { node.rooms.subscribe(room: room) }
            if before > 0 && after == 0 { node.rooms.unsubscribe(room: room) }
            if before != after, userPresent != nil {
                // The bus takes a user's 0 <-> 1 transition only after the count that made the room non-empty
                // (PresenceBus): this count goes now, ahead of any still pending for the room.
                pendingPresence.withLock { _ = $0.removeValue(forKey: room) }
                node.presence.setPresence(room: room, localCount: after)
            } else if before != after {
                let first = pendingPresence.withLock { p -> Bool in
                    let wasEmpty = p.isEmpty
                    p[room] = after
                    return wasEmpty
                }
                if first { node.loops[loop].loop.atTickEnd { [self] in flushPresence() } }
            }
            if let user, let present = userPresent { node.presence.setPresenceUser(room: room, user: user, present: present) }
        }
    }

    /// Sends the pending presence counts, under `interest` so that a newer count for a room never reaches
    /// the bus before an older one taken by another loop's flush.
    private func flushPresence() {
        interest.withLock { _ in
            let batch = pendingPresence.withLock { p -> [String: Int] in
                let b = p
                p.removeAll()
                return b
            }
            for (room, count) in batch { node.presence.setPresence(room: room, localCount: count) }
        }
    }

    // MARK: - BusDelegate

    func busDeliver(_ message: BusMessage) {
        let mask = rooms.withLock { $0[message.room]?.loopMask ?? 0 }
        guard mask != 0 else { return }
        // Encoded once per node: every member on every loop gets these same bytes.
        let frame = Bytes.frame(.text, Envelope.message(room: message.room, offset: message.offset.description, data: message.data))
        let room = message.room
        let offset = message.offset
        let publishedAt = message.publishedAtMilliseconds
        let data = message.data
        var m = mask
        while m != 0 {
            let i = m.trailingZeroBitCount
            m &= m - 1
            let gl = node.loops[i]
            gl.loop.execute { gl.fanOut(room: room, frame: frame, offset: offset, data: data, publishedAtMilliseconds: publishedAt) }
        }
    }

    func busStateChanged(_ state: BusState) {
        busState.store(state == .up, ordering: .relaxed)
        node.logger.info("bus state", ["state": .string(state.rawValue)])
    }
}
