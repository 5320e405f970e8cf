import CLinux
import ClusterBus
import Glibc
import Protocol
import Runtime
import TLS

/// Everything one event loop owns: its epoll loop, its listener, the connections on it, the rooms of those
/// connections, a shared read buffer (so an idle connection holds no buffer of its own), a scratch iovec
/// array for `writev`, and its metrics. Loop-confined except for `metrics` and `loop.execute`.
public final class GatewayLoop: SocketContext, @unchecked Sendable {
    let node: GatewayNode
    var config: Config { node.config }
    /// Counters summed by `/metrics`.
    public let metrics: LoopMetrics
    /// room → members on this loop.
    var rooms: [String: LoopRoom] = [:]
    /// Every open WebSocket connection on this loop (for shutdown), by connection id.
    var connections: [UInt64: Connection] = [:]
    var listener: Listener?
    /// Accepted analytics events waiting for their batch.
    private(set) lazy var analytics = AnalyticsBatcher(loop: self)
    var adminListener: Listener?
    private var nextConnectionNumber: UInt64 = 0
    /// The public port's certificates for new connections (nil = plain); replaced on this loop by a reload.
    var tls: TLSContext?
    /// The admin port's certificate (loop 0 only accepts admin connections).
    var adminTLS: TLSContext?
    /// TLS counters of the public and the admin listener on this loop.
    let tlsMetrics = TLSMetrics()
    let adminTLSMetrics = TLSMetrics()

    init(index: Int, node: GatewayNode) throws(SyscallError) {
        let metrics = LoopMetrics()
        self.metrics = metrics
        self.node = node
        self.tls = node.config.tls
        self.adminTLS = node.config.adminTLS
        super.init(loop: try EventLoop(index: index), bytesIn: metrics.bytesIn, bytesOut: metrics.bytesOut,
                   outboundQueueBytes: metrics.outboundQueueBytes)
    }

    /// The transport for a socket accepted on the public port: TLS with the current certificates, or plain.
    func publicTransport(fd: CInt) -> any Transport {
        guard let tls else { return PlainTransport.shared }
        return TLSTransport(context: tls, fd: fd, metrics: tlsMetrics)
    }

    /// The transport for a socket accepted on the admin port.
    func adminTransport(fd: CInt) -> any Transport {
        guard let adminTLS else { return PlainTransport.shared }
        return TLSTransport(context: adminTLS, fd: fd, metrics: adminTLSMetrics)
    }

    /// A node-unique connection id: loop index in the top byte.
    func makeConnectionID() -> UInt64 {
        nextConnectionNumber += 1
        return (UInt64(loop.index) << 56) | nextConnectionNumber
    }

    // MARK: - Rooms (loop thread)

    /// Adds `c` to `room`; returns false when it already was a member.
    func join(_ c: Connection, room: String) -> Bool {
        let r: LoopRoom
        if let existing = rooms[room] {
            r = existing
        } else {
            r = LoopRoom(name: room)
            rooms[room] = r
        }
        guard c.roomSlots[room] == nil else { return false }
        c.roomSlots[room] = r.members.count
        r.members.append(c)
        metrics.roomJoins.add()
        node.hub.membersChanged(room: room, loop: loop.index, localCount: r.members.count, user: c.authState?.identity?.user, joined: true)
        return true
    }

    /// Removes `c` from `room`; returns false when it was not a member.
    @discardableResult
    func leave(_ c: Connection, room: String) -> Bool {
        guard let slot = c.roomSlots.removeValue(forKey: room), let r = rooms[room] else { return false }
        let last = r.members.count - 1
        if slot != last {
            let moved = r.members[last]
            r.members[slot] = moved
            moved.roomSlots[room] = slot
        }
        r.members.removeLast()
        r.resumeFloors[ObjectIdentifier(c)] = nil
        r.heldForResume[ObjectIdentifier(c)] = nil
        metrics.roomLeaves.add()
        if r.members.isEmpty { rooms[room] = nil }
        node.hub.membersChanged(room: room, loop: loop.index, localCount: r.members.count, user: c.authState?.identity?.user, joined: false)
        return true
    }

    /// Queues the same frame bytes on every member of `room` on this loop (the fan-out hot path).
    func fanOut(room: String, frame: Bytes, offset: StreamOffset, publishedAtMilliseconds: UInt64) {
        guard let r = rooms[room] else { return }
        let now = wallClockMilliseconds()
        metrics.deliveryLatency.observe(nanoseconds: (Int(bitPattern: UInt(now)) - Int(bitPattern: UInt(publishedAtMilliseconds))) * 1_000_000)
        if r.resumeFloors.isEmpty && r.heldForResume.isEmpty {
            for m in r.members { m.enqueueFrame(frame) }
        } else {
            for m in r.members {
                if r.heldForResume[ObjectIdentifier(m)] != nil {
                    // Its `join since` is in flight: hold live messages until the replay is sent (resume seam).
                    r.heldForResume[ObjectIdentifier(m)]!.append((offset, frame))
                    continue
                }
                if let floor = r.resumeFloors[ObjectIdentifier(m)] {
                    // A message already replayed from history to this member (resume seam): skip it.
                    if floor.epoch == offset.epoch && !offset.isAfter(floor) { continue }
                    r.resumeFloors[ObjectIdentifier(m)] = nil
                }
                m.enqueueFrame(frame)
            }
        }
    }

    func register(_ c: Connection) { connections[c.id] = c }
    func unregister(_ c: Connection) { connections[c.id] = nil }
}

/// The members of one room on one loop. Members are an array (fast fan-out); each connection stores its
/// slot so removal is O(1) by swapping the last member in.
final class LoopRoom {
    let name: String
    var members: [Connection] = []
    /// Members that resumed from history: live messages at or below the floor were already replayed.
    var resumeFloors: [ObjectIdentifier: StreamOffset] = [:]
    /// Members whose `join since` is in flight (an asynchronous bus such as Redis answers after live
    /// messages may already flow): their live frames wait here and follow the replay, duplicates dropped.
    var heldForResume: [ObjectIdentifier: [(offset: StreamOffset, frame: Bytes)]] = [:]
    init(name: String) { self.name = name }
}
