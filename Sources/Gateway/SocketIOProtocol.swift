import ClusterBus
import Foundation
import Protocol
import Runtime

/// Socket.IO v5 over Engine.IO v4 on `--socketio-path` (docs/socketio.md): the WebSocket transport of one
/// ``SocketIOSession`` per connection, its packets mapped onto the same rooms, auth and bus as the room
/// protocol. The session machine lives in `Protocol`; this personality performs its actions.
final class SocketIOProtocol: Personality {
    static let shared = SocketIOProtocol()
    let name = "socketio"

    func limits(on loop: GatewayLoop) -> ConnectionLimits { loop.socketIOLimits }
    func opened(_ c: Connection) { c.socketIOOpened() }
    func text(_ c: Connection, _ payload: UnsafeRawBufferPointer) {
        if c.socketIO == nil { return c.socketIOLinked(text: Array(payload), binary: nil) }
        c.socketIOReceived { s, now in s.receive(text: Array(payload), now: now) }
    }
    func binary(_ c: Connection, _ payload: UnsafeRawBufferPointer) {
        if c.socketIO == nil { return c.socketIOLinked(text: nil, binary: Array(payload)) }
        c.socketIOReceived { s, now in s.receive(binaryFrame: Array(payload), now: now) }
    }
    /// Nothing to send: Socket.IO has no "reconnect after"; the 1012 close that follows makes the client
    /// reconnect (a DISCONNECT packet would stop it), and the recovery record is written as the rooms are left.
    func draining(_ c: Connection, afterMs: Int) {}
}

/// The Socket.IO side of one connection: the session machine, the namespace each room was joined through,
/// the private id (`pid`) of its recovery record, and the session's heartbeat timer. Loop-confined.
final class SocketIOConnectionState: TimerTarget {
    var session: SocketIOSession
    /// room → the namespace it was joined through (room messages go out on that namespace).
    var roomNamespaces: [String: String] = [:]
    /// The private session id handed out in CONNECT answers; a recovered session keeps the old one.
    var pid: String
    /// The client ended the session itself (Engine.IO close, last namespace left): no recovery record.
    var endedByClient = false
    /// The recovery record was written (or the session ended without one).
    var ended = false
    /// The session closed for malformed input (a polling POST is then answered 400).
    var closedByError = false
    /// The polling session this connection stands for (nil on a WebSocket session).
    var polling: SocketIOPollingSession?
    /// When the earliest token presented at a CONNECT expires (its `exp` plus `--jwt-leeway`), on the
    /// loop's clock; nil = never. The session then closes (4003) and the client reconnects with a fresh
    /// token and recovers.
    var tokenExpiresAt: Int?
    unowned(unsafe) let connection: Connection
    private(set) var timerGeneration: UInt32 = 0
    private var armedDeadline = 0

    init(connection: Connection, configuration: SocketIOSessionConfiguration, transport: EngineIOTransport, sid: String) {
        self.connection = connection
        session = SocketIOSession(sid: sid, transport: transport, configuration: configuration)
        pid = Self.randomID()
    }

    /// 20 random characters of the base64url alphabet (120 bits): session, socket and private ids.
    static func randomID() -> String {
        // Two 64-bit draws give 20 six-bit characters (one system call each, not one per character).
        var rng = SystemRandomNumberGenerator()
        let bits = [rng.next() as UInt64, rng.next() as UInt64]
        return String(decoding: (0..<20).map { i in alphabet[Int(bits[i / 10] >> (6 * UInt64(i % 10)) & 63)] }, as: UTF8.self)
    }

    private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)

    /// A room message as the configured message event on `namespace`: `42<ns,>["message",room,data,offset]`,
    /// framed once and shared by every Socket.IO member on that namespace.
    static func messageFrame(namespace: String, room: String, offset: String, data: JSONFragment, config: SocketIOSettings) -> Bytes {
        let packet = SocketIOPacket.event(namespace: namespace, name: config.messageEvent, arguments: [.string(room), data, .string(offset)])
        return Bytes.frame(.text, packet.engineIOPacket.webSocketFrame.payload)
    }

    /// Arms the loop's timer wheel for the session's next deadline, when it changed.
    func syncTimer() {
        guard !ended, let heartbeat = session.nextDeadline else {
            timerGeneration &+= 1
            armedDeadline = 0
            return
        }
        let next = tokenExpiresAt.map { min($0, heartbeat) } ?? heartbeat
        guard next != armedDeadline else { return }
        armedDeadline = next
        timerGeneration &+= 1
        connection.loop.loop.schedule(self, generation: timerGeneration, deadline: UInt64(max(0, next)))
    }

    /// Stops the heartbeat for good (the connection is gone).
    func stopTimer() {
        timerGeneration &+= 1
        armedDeadline = 0
    }

    func timerFired(now: UInt64) {
        armedDeadline = 0
        guard !ended, connection.phase == .open else { return }
        if let expiry = tokenExpiresAt, Int(now) >= expiry { return connection.socketIOTokenExpired() }
        connection.performSocketIO(session.tick(now: Int(now)))
        syncTimer()
    }
}

extension SocketIOCloseReason {
    /// The session closed because of what the client sent (not a timeout or an orderly close).
    var isMalformedInput: Bool {
        switch self {
        case .engineIOError, .socketIOError, .unexpectedPacket: true
        case .pingTimeout, .connectTimeout, .clientClosed, .serverClosed: false
        }
    }
}

extension Connection {
    /// This loop's Socket.IO counters.
    var sioMetrics: SocketIOLoopMetrics { loop.metrics.socketIO }

    // MARK: - Routing

    /// Routes an Engine.IO request on `--socketio-path`: returns true for a new WebSocket session (the upgrade
    /// goes on as for any WebSocket); otherwise answers it with the protocol's HTTP error and returns false:
    /// `EIO` other than 4 → 400 code 5, an unknown transport → code 0, a sid this node does not hold → code 1.
    func routeSocketIO(_ head: HTTPRequestHead) -> Bool {
        let request: EngineIORequest
        do throws(EngineIOHandshakeError) {
            request = try EngineIORequest.parse(head)
        } catch {
            rejectEngineIO(error)
            return false
        }
        return routeEngineIO(head, request)
    }

    /// Answers an Engine.IO HTTP error (`{"code":…,"message":…,"detail":…}`) and closes after it.
    func rejectEngineIO(_ error: EngineIOHandshakeError) {
        sioMetrics.countHTTPError(error.code.rawValue)
        rejectAnswer(error.response, status: error.status.rawValue, reason: error.description)
    }

    // MARK: - Session

    /// The 101 went out: a session starts with its open packet (its heartbeat runs on the loop's timer
    /// wheel), or, for an upgrade of a polling session, the WebSocket is linked to that session.
    func socketIOOpened() {
        if let sid = loop.engineIO.pendingLinks.removeValue(forKey: id) {
            loop.engineIO.links[id] = sid
            return
        }
        socketIOStart(transport: .websocket, sid: SocketIOConnectionState.randomID(), polling: nil)
    }

    /// Starts a session on this connection: sends the open packet and arms the heartbeat.
    func socketIOStart(transport: EngineIOTransport, sid: String, polling: SocketIOPollingSession?) {
        let sio = SocketIOConnectionState(connection: self, configuration: loop.config.socketIO.sessionConfiguration, transport: transport, sid: sid)
        sio.polling = polling
        socketIO = sio
        sioMetrics.sessionsOpened.add()
        sioMetrics.sessionsOpen.add()
        performSocketIO(sio.session.start(now: Int(now)))
        sio.syncTimer()
    }

    /// A frame on a WebSocket linked to a polling session (probing the upgrade, or upgraded): to the
    /// session, on its loop (hops keep their order: each loop's task queue is FIFO).
    func socketIOLinked(text: [UInt8]?, binary: [UInt8]?) {
        guard let sid = loop.engineIO.links[id] else { return }
        let ws = self
        SocketIOPollingSession.with(sid, on: loop.node) { s in
            guard let s else { return ws.loop.onLoop { ws.fail(.policyViolation, reason: "no such session") } }
            s.fromWebSocket(ws, text: text, binary: binary)
        }
    }

    /// Feeds one inbound message to the session and performs what it asks. `allOrNothing` (a polling POST):
    /// when the input closes the session as malformed, only the close is performed, none of the packets
    /// before the bad one.
    func socketIOReceived(allOrNothing: Bool = false, _ body: (inout SocketIOSession, Int) -> [SocketIOAction]) {
        guard let sio = socketIO else { return }
        var actions = body(&sio.session, Int(now))
        if allOrNothing, case .close(let reason)? = actions.last, reason.isMalformedInput { actions = [.close(reason)] }
        performSocketIO(actions)
        sio.syncTimer()
    }

    /// Performs the session's actions in order.
    func performSocketIO(_ actions: [SocketIOAction]) {
        guard let sio = socketIO else { return }
        for action in actions {
            switch action {
            case .send(let packet):
                let (isBinary, payload) = packet.webSocketFrame
                payload.withUnsafeBytes { _ = enqueueFrame(frame(isBinary ? .binary : .text, $0)) }
            case .sendOnProbe, .upgraded:
                break  // polling upgrades only; a WebSocket session never probes
            case .authenticate(let ns, let auth, let recovery):
                socketIOAuthenticate(namespace: ns, auth: auth, recovery: recovery)
            case .join(let ns, let room, let since, let ackID):
                if let id = authState?.identity, !id.mayJoin(room) {
                    loop.metrics.auth.forbiddenJoins.add()
                    socketIOAnswerError(namespace: ns, ackID: ackID, code: .forbidden, message: "not allowed to join '\(room)'")
                    continue
                }
                if roomSlots[room] == nil {
                    if sio.roomNamespaces.count > roomSlots.count + 16 { sio.roomNamespaces = sio.roomNamespaces.filter { roomSlots[$0.key] != nil } }
                    sio.roomNamespaces[room] = ns
                }
                joinRoom(room, since: since, origin: .socketIO(namespace: ns, ackID: ackID))
            case .leave(let ns, let room, let ackID):
                if loop.leave(self, room: room) {
                    sio.roomNamespaces[room] = nil
                    socketIOAnswer(namespace: ns, ackID: ackID, JSONFragment(bytes: Self.object([("room", .string(room))])))
                } else {
                    socketIOAnswerError(namespace: ns, ackID: ackID, code: .notJoined, message: "not a member of '\(room)'")
                }
            case .publish(let ns, let room, let data, let ackID):
                if let id = authState?.identity, !id.mayPublish(room) {
                    loop.metrics.auth.forbiddenPublishes.add()
                    socketIOAnswerError(namespace: ns, ackID: ackID, code: .forbidden, message: "not allowed to publish to '\(room)'")
                    continue
                }
                publishToRoom(room, data: data, idempotencyKey: nil, origin: .socketIO(namespace: ns, ackID: ackID))
            case .forward(let ns, let event, let arguments, let attachments, let ackID):
                socketIOForward(namespace: ns, event: event, arguments: arguments, attachments: attachments, ackID: ackID)
            case .ackReceived:
                break  // the gateway emits nothing that asks for an ack yet
            case .namespaceClosed(let ns):
                for (room, roomNS) in sio.roomNamespaces where roomNS == ns {
                    loop.leave(self, room: room)
                    sio.roomNamespaces[room] = nil
                }
            case .close(let reason):
                socketIOSessionClosed(reason)
            }
        }
    }

    /// The session closed: count it by reason, log it, close the WebSocket with a code that says why.
    private func socketIOSessionClosed(_ reason: SocketIOCloseReason) {
        sioMetrics.countClose(reason.label)
        loop.node.logger.rateLimited(
            .info, "socketio session closed",
            [
                "conn": logID, "protocol": .string("socketio"),
                "reason": .string(reason.label), "detail": .string(reason.description)
            ])
        switch reason {
        case .clientClosed:
            socketIO?.endedByClient = true
            close(.normalClosure, reason: "client closed the session")
        case .pingTimeout:
            loop.metrics.reapedPingTimeout.add()
            fail(.goingAway, reason: "ping timeout")
        case .connectTimeout:
            fail(.goingAway, reason: "no namespace connected in time")
        case .engineIOError(let e):
            socketIO?.closedByError = true
            if case .payloadTooLarge = e.underlying {
                fail(.messageTooBig, reason: "packet over maxPayload")
            } else {
                fail(.policyViolation, reason: reason.label)
            }
        case .socketIOError, .unexpectedPacket:
            socketIO?.closedByError = true
            fail(.policyViolation, reason: reason.label)
        case .serverClosed:
            break
        }
    }

    /// The connection is leaving its rooms for good (any close, the drain's included): writes the recovery
    /// record from the rooms still held, unless the client ended the session itself. Called once.
    func socketIOSessionEnding() {
        loop.engineIO.posts[id] = nil
        if let sid = loop.engineIO.heldPolls.removeValue(forKey: id) {
            // A poll held for a session went away unanswered: the session may take the next one.
            let http = self
            SocketIOPollingSession.with(sid, on: loop.node) { s in s?.pollAbandoned(by: http) }
        }
        if let sid = loop.engineIO.links.removeValue(forKey: id) {
            let ws = self
            SocketIOPollingSession.with(sid, on: loop.node) { s in s?.webSocketEnded(ws) }
        }
        guard let sio = socketIO, !sio.ended else { return }
        sio.ended = true
        sio.stopTimer()
        let dropped = sio.session.counters
        sioMetrics.ignoredPackets.add(dropped.ignoredAcks + dropped.unconnectedNamespacePackets + dropped.duplicateConnects + dropped.rejectedRoomOps)
        sio.polling?.end()
        sio.polling = nil
        sioMetrics.sessionsOpen.add(-1)
        let window = loop.config.socketIO.recoveryWindowMs
        guard window > 0, !sio.endedByClient, !sio.session.connectedNamespaces.isEmpty || !roomSlots.isEmpty else { return }
        // Each room with where delivery got to on this loop (the client's own offset refines one room on recovery).
        var rooms: [[String: String]] = []
        for room in roomSlots.keys.sorted() {
            var entry = ["room": room, "ns": sio.roomNamespaces[room] ?? "/"]
            if let offset = loop.rooms[room]?.lastOffset { entry["offset"] = offset.description }
            rooms.append(entry)
        }
        guard let record = try? JSONSerialization.data(withJSONObject: ["rooms": rooms, "user": authState?.identity?.user ?? ""]) else { return }
        loop.node.services.sessions.storeSession(key: sio.pid, value: Array(record), ttlMilliseconds: window)
        sioMetrics.recordsWritten.add()
    }

    // MARK: - Answers

    /// Answers a `join`: `[{"room":…,"offset":…,"recovered":…}]`.
    func socketIOJoined(namespace ns: String, ackID: Int?, room: String, offset: StreamOffset, recovered: Bool) {
        socketIOAnswer(
            namespace: ns, ackID: ackID,
            JSONFragment(
                bytes: Self.object([
                    ("room", .string(room)), ("offset", .string(offset.description)),
                    ("recovered", JSONFragment(recovered ? "true" : "false"))
                ])))
    }

    /// Answers a `publish`: `[{"offset":…}]`.
    func socketIOAnswerOffset(namespace ns: String, ackID: Int?, offset: StreamOffset) {
        socketIOAnswer(namespace: ns, ackID: ackID, JSONFragment(bytes: Self.object([("offset", .string(offset.description))])))
    }

    /// An error ack `[{"error":code,"message":…}]` when the client asked for an answer; else only counted.
    func socketIOAnswerError(namespace ns: String, ackID: Int?, code: ErrorCode, message: String) {
        sioMetrics.errorAcks.add()
        guard let ackID, let sio = socketIO else { return }
        performSocketIO(sio.session.answerError(namespace: ns, ackID: ackID, code: code, message: message))
    }

    private func socketIOAnswer(namespace ns: String, ackID: Int?, _ argument: JSONFragment) {
        guard let ackID, let sio = socketIO else { return }
        performSocketIO(sio.session.answer(namespace: ns, ackID: ackID, arguments: [argument]))
    }

    /// `{"k":v,…}` from already-encoded values, in order.
    static func object(_ fields: [(String, JSONFragment)]) -> [UInt8] {
        var out: [UInt8] = [UInt8(ascii: "{")]
        for (i, (k, v)) in fields.enumerated() {
            if i > 0 { out.append(UInt8(ascii: ",")) }
            out.append(contentsOf: JSONFragment.string(k).bytes)
            out.append(UInt8(ascii: ":"))
            out.append(contentsOf: v.bytes)
        }
        out.append(UInt8(ascii: "}"))
        return out
    }
}
