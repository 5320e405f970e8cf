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
    /// Limits of room-protocol and echo connections on this loop (shared: one pointer per connection).
    let connectionLimits: ConnectionLimits
    let echoLimits: ConnectionLimits
    /// Socket.IO connections: Engine.IO's own heartbeat reaps them, so no WebSocket pings (a year apart).
    let socketIOLimits: ConnectionLimits
    /// permessage-deflate: one inflater for every connection on this loop (each message is inflated whole,
    /// client_no_context_takeover), and deflaters by window size, made on first use (~260 KiB each).
    let inflater = Inflater()
    private var deflaters: [Int: Deflater] = [:]
    /// Rooms holding a ``SharedDeflateStream`` (GatewayLoop+DeflateStreams.swift), at most `--deflate-room-contexts`.
    var deflateStreamRooms: [ObjectIdentifier: LoopRoom] = [:]
    /// Sockets to backends (the auth backend): the same loop, their own small read buffer and byte counters,
    /// so backend traffic is not counted as client traffic.
    private(set) lazy var backendSockets = SocketContext(loop: loop, readBufferBytes: 16 * 1024)
    /// room → members on this loop.
    var rooms: [String: LoopRoom] = [:]
    /// Socket.IO polling sessions, links and POST bodies of this loop (SocketIOPolling.swift).
    let engineIO = EngineIOLoopState()
    /// Every open WebSocket connection on this loop (for shutdown), by connection id.
    var connections: [UInt64: Connection] = [:]
    var listener: Listener?
    /// Accepted analytics events waiting for their batch.
    private(set) lazy var analytics = AnalyticsBatcher(loop: self)
    var adminListener: Listener?
    private var nextConnectionNumber: UInt64 = 0
    /// `X-Request-ID`s of this loop's handshakes (RequestID.swift).
    var requestIDs = RequestIDPool()
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
        self.connectionLimits = ConnectionLimits(node.config, frameRateLimited: true)
        self.echoLimits = ConnectionLimits(node.config, frameRateLimited: false)
        self.socketIOLimits = ConnectionLimits(node.config, frameRateLimited: true, pingIntervalMs: 365 * 86_400_000)
        self.tls = node.config.tls
        self.adminTLS = node.config.adminTLS
        super.init(
            loop: try EventLoop(index: index), bytesIn: metrics.bytesIn, bytesOut: metrics.bytesOut,
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
        if c.deflateWindowBits != 0 { r.deflateMembers += 1 }
        if c.deflateShared && c.socketIO == nil { r.sharedDeflateMembers += 1 }
        if c.socketIO != nil { r.socketIOMembers += 1 }
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
        if c.deflateWindowBits != 0 { r.deflateMembers -= 1 }
        if c.deflateShared && c.socketIO == nil { r.sharedDeflateMembers -= 1 }
        if c.socketIO != nil { r.socketIOMembers -= 1 }
        r.forget(c)
        metrics.roomLeaves.add()
        if r.members.isEmpty {
            rooms[room] = nil
            dropDeflateStream(r)
        }
        node.hub.membersChanged(room: room, loop: loop.index, localCount: r.members.count, user: c.authState?.identity?.user, joined: false)
        return true
    }

    /// `payload` compressed into a whole RSV1 frame for a peer whose window is `windowBits` (RFC 7692 §7.2.1),
    /// or nil when compression does not shrink it. One compression per call: the fan-out calls it once per
    /// room message and shares the result with every member that negotiated deflate.
    func compressedFrame(_ opcode: Opcode, _ payload: UnsafeRawBufferPointer, windowBits: Int) -> Bytes? {
        let bits = payload.count <= 1 << windowBits ? 15 : windowBits
        let deflater = deflaters[bits] ?? Deflater(windowBits: bits)
        deflaters[bits] = deflater
        return deflater.compressedFrame(opcode: opcode, payload: payload).map(Bytes.init)
    }

    /// Queues the same frame bytes on every member of `room` on this loop (the fan-out hot path); members that
    /// negotiated permessage-deflate share one compressed copy, made once, and Socket.IO members one
    /// `message` event per namespace (`data`: the message's JSON, for those).
    func fanOut(room: String, frame: Bytes, offset: StreamOffset, data: JSONFragment, publishedAtMilliseconds: UInt64) {
        guard let r = rooms[room] else { return }
        r.lastOffset = offset
        let now = wallClockMilliseconds()
        metrics.deliveryLatency.observe(nanoseconds: (Int(bitPattern: UInt(now)) - Int(bitPattern: UInt(publishedAtMilliseconds))) * 1_000_000)
        if r.deflateMembers > 0 || r.socketIOMembers > 0 {
            fanOutPerMember(r, frame: frame, offset: offset, data: data)
        } else if !r.isResuming {
            for m in r.members { m.enqueueFrame(frame) }
        } else {
            for m in r.members where r.admitLive(m, offset: offset, frame: frame) { m.enqueueFrame(frame) }
        }
    }

    /// Runs `body` on this loop: inline when already there (bus completions from LocalBus), else queued.
    func onLoop(_ body: @escaping @Sendable () -> Void) {
        if loop.inLoop { body() } else { loop.execute(body) }
    }

    /// The fan-out when members differ in what they get: permessage-deflate members share the room stream's
    /// frame or one copy compressed alone per window size (``DeflateFanOut``), Socket.IO members one `message`
    /// event per namespace, the others `frame`.
    private func fanOutPerMember(_ r: LoopRoom, frame: Bytes, offset: StreamOffset, data: JSONFragment) {
        let payload = frame.framePayload
        let compress = r.deflateMembers > 0 && config.deflate.shouldCompress(payloadLength: payload.count)
        var deflate = compress ? DeflateFanOut(loop: self, room: r, frame: frame, payload: payload) : nil
        var events: [String: Bytes] = [:]
        for m in r.members {
            var own = frame
            var token: UInt64?
            if let sio = m.socketIO {
                let ns = sio.roomNamespaces[r.name] ?? "/"
                if let made = events[ns] {
                    own = made
                } else {
                    own = SocketIOConnectionState.messageFrame(namespace: ns, room: r.name, offset: offset.description, data: data, config: config.socketIO)
                    events[ns] = own
                }
            } else if m.deflateWindowBits != 0, deflate != nil {
                (own, token) = deflate!.frame(for: m, on: self, held: r.isResuming && r.isHolding(m))
            }
            if r.isResuming && !r.admitLive(m, offset: offset, frame: own) { continue }
            // Queuing any compressed frame clears the member's token; a stream frame then sets it.
            if m.enqueueFrame(own) == .queued, let token { m.deflateToken = token }
        }
        deflate?.finish()
    }

    func register(_ c: Connection) { connections[c.id] = c }
    func unregister(_ c: Connection) { connections[c.id] = nil }
}

/// The members of one room on one loop, and the owner of the room's resume seam on this loop. Members are an
/// array (fast fan-out); each connection stores its slot so removal is O(1) by swapping the last member in.
///
/// The resume seam: a member whose `join since` is in flight (an asynchronous bus such as Redis answers after
/// live messages may already flow) has its live frames held until the replay is queued; after it, live
/// messages the replay already covered are skipped once. Only this type reads or writes that state.
final class LoopRoom {
    let name: String
    var members: [Connection] = []
    /// Members that negotiated permessage-deflate (the fan-out compresses only when there are any).
    var deflateMembers = 0
    /// Members (not Socket.IO) that may take the room stream's frames (``Connection/deflateShared``).
    var sharedDeflateMembers = 0
    /// The room's permessage-deflate stream on this loop (GatewayLoop+DeflateStreams.swift), and when it was last used.
    var deflateStream: SharedDeflateStream?
    var deflateStreamUsedAt: UInt64 = 0
    /// Members speaking Socket.IO (the fan-out frames a `message` event for them only when there are any).
    var socketIOMembers = 0
    /// Members that resumed from history: live messages at or below the floor were already replayed.
    private var resumeFloors: [ObjectIdentifier: StreamOffset] = [:]
    /// Members whose `join since` is in flight: their live frames, in order.
    private var heldForResume: [ObjectIdentifier: [(offset: StreamOffset, frame: Bytes)]] = [:]
    /// Members whose token expired: no live message until they authenticate again and resume.
    private var suspended: Set<ObjectIdentifier> = []
    /// The newest offset this loop saw for the room (a fanned-out message or a join's answer): where a
    /// suspended member resumes from.
    var lastOffset: StreamOffset?
    /// Plain joins answered from `lastOffset` once the bus confirmed it (Connection+Join.swift).
    var joinOffsets = JoinOffsetCache<PlainJoinWaiter>()
    init(name: String) { self.name = name }

    /// True while any member is inside the resume seam or suspended (the fan-out then checks each member).
    var isResuming: Bool { !resumeFloors.isEmpty || !heldForResume.isEmpty || !suspended.isEmpty }

    /// Records a join's answer: the room's latest offset when nothing newer was seen on this loop.
    func noteOffset(_ offset: StreamOffset) {
        if let last = lastOffset, last.epoch == offset.epoch, !offset.isAfter(last) { return }
        lastOffset = offset
    }

    /// Stops live messages to `c` (its token expired); returns where it must resume from.
    func suspend(_ c: Connection) -> StreamOffset? {
        suspended.insert(ObjectIdentifier(c))
        return lastOffset
    }

    /// Ends a suspension; the caller resumes `c` from the offset ``suspend(_:)`` returned.
    func unsuspend(_ c: Connection) { suspended.remove(ObjectIdentifier(c)) }

    /// Holds live messages for `c` until ``endResume(_:replayedUpTo:)``.
    func holdForResume(_ c: Connection) { heldForResume[ObjectIdentifier(c)] = [] }

    /// Ends the hold on `c`: returns the held frames the replay did not cover (the replay ended at
    /// `replayedUpTo`; nil when nothing was replayed), and skips covered live messages from then on.
    func endResume(_ c: Connection, replayedUpTo: StreamOffset?) -> [Bytes] {
        let held = heldForResume.removeValue(forKey: ObjectIdentifier(c)) ?? []
        guard let floor = replayedUpTo else { return held.map(\.frame) }
        resumeFloors[ObjectIdentifier(c)] = floor
        return held.compactMap { isCovered($0.offset, by: floor) ? nil : $0.frame }
    }

    /// Whether live message `offset` goes to member `m` now (false: held, or already replayed).
    func admitLive(_ m: Connection, offset: StreamOffset, frame: Bytes) -> Bool {
        let key = ObjectIdentifier(m)
        if suspended.contains(key) { return false }
        if heldForResume[key] != nil {
            heldForResume[key]!.append((offset, frame))
            return false
        }
        if let floor = resumeFloors[key] {
            if isCovered(offset, by: floor) { return false }
            resumeFloors[key] = nil
        }
        return true
    }

    /// Whether live frames for `m` are being held for its replay (frames queued meanwhile pass them).
    func isHolding(_ m: Connection) -> Bool { heldForResume[ObjectIdentifier(m)] != nil }

    /// A member left: forget its resume state.
    func forget(_ c: Connection) {
        resumeFloors[ObjectIdentifier(c)] = nil
        heldForResume[ObjectIdentifier(c)] = nil
        suspended.remove(ObjectIdentifier(c))
    }

    private func isCovered(_ offset: StreamOffset, by floor: StreamOffset) -> Bool { offset.isCovered(by: floor) }
}
