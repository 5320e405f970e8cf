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

/// A Socket.IO event that is not a room op, for the backend event proxy.
struct SocketIOForwardedEvent: Sendable {
    /// The namespace it came through, e.g. `/` or `/chat`.
    var namespace: String
    /// The event name (`socket.emit(name, …)`).
    var event: String
    /// The arguments after the name, each one JSON value as sent.
    var arguments: [JSONFragment]
    /// Binary attachments (BINARY_EVENT), in placeholder order.
    var attachments: [[UInt8]]
    /// The authenticated user, nil without authentication.
    var user: String?
    /// Whether the client waits for an answer (it sent an ack id).
    var wantsAnswer: Bool
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

/// The seam of the backend event proxy (built on its own branch, issue 14): events that are not room ops
/// go to it when the node has one (``GatewayNode/socketIOEventProxy``); without one they get an error ack.
protocol SocketIOEventProxy: AnyObject, Sendable {
    /// Hands `event` to the backend; `completion` (any thread, once) gives the ack's arguments, or an error
    /// code and message for an error ack. Not called back for events without an ack id is fine.
    func forward(_ event: SocketIOForwardedEvent, completion: @escaping @Sendable (Result<[JSONFragment], SocketIOProxyError>) -> Void)
}

/// Why the backend event proxy could not answer an event: sent to the client as an error ack.
struct SocketIOProxyError: Error, Sendable {
    /// The room protocol's error code, e.g. `unavailable`.
    var code: ErrorCode
    /// Safe to show the client.
    var message: String
}

extension Connection {
    private var sioMetrics: SocketIOLoopMetrics { loop.metrics.socketIO }

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
                break   // polling upgrades only; a WebSocket session never probes
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
                break   // the gateway emits nothing that asks for an ack yet
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
        loop.node.logger.rateLimited(.info, "socketio session closed", ["conn": logID, "protocol": .string("socketio"),
                                                                       "reason": .string(reason.label), "detail": .string(reason.description)])
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
            if case .payloadTooLarge = e.underlying { fail(.messageTooBig, reason: "packet over maxPayload") } else { fail(.policyViolation, reason: reason.label) }
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

    /// The token of a CONNECT expired: the session closes with 4003 (its rooms are recorded for recovery),
    /// so that the client reconnects with a fresh token (socket.io-client calls its `auth` function again).
    func socketIOTokenExpired() {
        loop.metrics.auth.count(.expired)
        loop.node.logger.rateLimited(.info, "socketio token expired", ["conn": logID, "protocol": .string("socketio")])
        sioMetrics.countClose("token_expired")
        fail(.tokenExpired, reason: "token expired")
    }

    // MARK: - CONNECT

    /// A CONNECT: without required tokens it is accepted at once; otherwise the auth object's `token` goes
    /// through the same JWT / auth-backend path (retry, breaker, cache) as the room protocol's `auth` op.
    private func socketIOAuthenticate(namespace ns: String, auth: JSONFragment?, recovery: SocketIORecovery?) {
        let svc = loop.node.auth
        guard svc.requiresToken else { return socketIOAdmit(namespace: ns, recovery: recovery) }
        guard let token = auth.flatMap(Self.tokenField) else {
            loop.metrics.auth.count(.invalid)
            return socketIOConnectRefused(namespace: ns, message: "authentication required: connect with auth {token}")
        }
        let ctx = authState?.context ?? AuthRequestContext(clientIP: Socket.peerAddress(fd), headers: [])
        if let outcome = svc.authenticate(token: token, context: ctx, on: loop, completion: { outcome in
            self.socketIOAuthenticated(namespace: ns, recovery: recovery, outcome)
        }) {
            socketIOAuthenticated(namespace: ns, recovery: recovery, outcome)
        }
    }

    private func socketIOAuthenticated(namespace ns: String, recovery: SocketIORecovery?, _ outcome: AuthOutcome) {
        guard phase == .open, socketIO != nil else { return }
        let m = loop.metrics.auth
        switch outcome {
        case .admitted(let identity):
            let st = authState ?? ConnectionAuthState()
            authState = st
            if let old = st.identity, old.user != identity.user {
                m.count(.invalid)
                return socketIOConnectRefused(namespace: ns, message: "token is for another user than this session's")
            }
            m.count(.ok)
            st.identity = identity
            st.status = .authenticated
            if let exp = identity.expiresAt, let sio = socketIO {
                let left = (exp + loop.node.auth.leewaySeconds) * 1000 - Double(wallClockMilliseconds())
                let at = Int(now) + Int(max(0, min(left, Double(Int32.max))))
                sio.tokenExpiresAt = min(sio.tokenExpiresAt ?? at, at)
            }
            socketIOAdmit(namespace: ns, recovery: recovery)
        case .invalid(let error):
            m.count(.invalid)
            loop.node.logger.rateLimited(.info, "token refused", ["rule": .string(error.label), "protocol": .string("socketio")])
            socketIOConnectRefused(namespace: ns, message: error.reason)
        case .rejected(let reason):
            m.count(.rejected)
            socketIOConnectRefused(namespace: ns, message: reason)
        case .unavailable(let after, let reason):
            m.count(.unavailable)
            socketIOConnectRefused(namespace: ns, message: reason, data: JSONFragment(bytes: Self.object([("retry_after_ms", .number(after * 1000))])))
        }
    }

    private func socketIOConnectRefused(namespace ns: String, message: String, data: JSONFragment? = nil) {
        guard let sio = socketIO else { return }
        sioMetrics.connectsRefused.add()
        performSocketIO(sio.session.connectResult(namespace: ns, .rejected(message: message, data: data)))
    }

    /// Connects `ns`; with a recovery request and a record for its `pid` (written by any node), the answer keeps
    /// that `pid` (socket.io-client then reports `recovered`) and the rooms joined through `ns` are rejoined
    /// with `since`, so what was published meanwhile is replayed once, in order.
    private func socketIOAdmit(namespace ns: String, recovery: SocketIORecovery?) {
        guard let sio = socketIO else { return }
        let recoveryOn = loop.config.socketIO.recoveryWindowMs > 0
        guard recoveryOn, let recovery, !recovery.pid.isEmpty, recovery.pid.utf8.count <= 64 else {
            sioMetrics.connectsAccepted.add()
            performSocketIO(sio.session.connectResult(namespace: ns, .accepted(socketID: SocketIOConnectionState.randomID(), pid: recoveryOn ? sio.pid : nil)))
            sio.syncTimer()
            return
        }
        let loopRef = loop
        loop.node.services.sessions.loadSession(key: recovery.pid) { record in
            loopRef.onLoop { self.socketIORecover(namespace: ns, recovery: recovery, record: record) }
        }
    }

    private func socketIORecover(namespace ns: String, recovery: SocketIORecovery, record: [UInt8]?) {
        guard phase == .open, let sio = socketIO, sio.session.authenticatingNamespaces.contains(ns) else { return }
        let rooms = record.flatMap { Self.recordRooms($0, user: authState?.identity?.user) }
        if rooms != nil { sio.pid = recovery.pid }
        sioMetrics.countRecovery(rooms != nil)
        sioMetrics.connectsAccepted.add()
        performSocketIO(sio.session.connectResult(namespace: ns, .accepted(socketID: SocketIOConnectionState.randomID(), pid: sio.pid)))
        sio.syncTimer()
        guard let rooms else { return }
        // The client's offset is the last event it got: it belongs to the room whose history shares its epoch.
        let clientOffset = recovery.offset.flatMap(StreamOffset.init)
        for r in rooms where r.ns == ns && roomSlots[r.room] == nil {
            if let id = authState?.identity, !id.mayJoin(r.room) { continue }
            if roomSlots.count >= loop.config.maxRoomsPerConnection { break }
            var since = r.offset
            if let c = clientOffset, let recorded = since, c.epoch == recorded.epoch { since = c }
            sio.roomNamespaces[r.room] = ns
            guard loop.join(self, room: r.room) else { continue }
            subscribeAndReplay(room: r.room, since: since, origin: .socketIO(namespace: ns, ackID: nil))
        }
    }

    /// The rooms of a recovery record (`{"rooms":[{"room","ns","offset"}],"user"}`); nil when it is not one,
    /// or it belongs to another user than the one now authenticated.
    private static func recordRooms(_ bytes: [UInt8], user: String?) -> [(room: String, ns: String, offset: StreamOffset?)]? {
        guard let object = try? JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any],
              let rooms = object["rooms"] as? [[String: String]] else { return nil }
        let owner = object["user"] as? String ?? ""
        guard owner == (user ?? "") else { return nil }
        return rooms.compactMap { r in
            guard let room = r["room"], Envelope.isValidRoomName(room) else { return nil }
            return (room, r["ns"] ?? "/", r["offset"].flatMap(StreamOffset.init))
        }
    }

    /// `token` of a CONNECT auth object (`{"token":"…"}`), nil when absent or not a string.
    private static func tokenField(_ auth: JSONFragment) -> String? {
        guard let object = try? JSONSerialization.jsonObject(with: Data(auth.bytes)) as? [String: Any] else { return nil }
        return object["token"] as? String
    }

    // MARK: - Answers

    /// Other events: to the backend event proxy when the node has one, else an error ack (when one is wanted).
    private func socketIOForward(namespace ns: String, event: String, arguments: [JSONFragment], attachments: [[UInt8]], ackID: Int?) {
        guard let proxy = loop.node.socketIOEventProxy else {
            sioMetrics.eventsRefused.add()
            socketIOAnswerError(namespace: ns, ackID: ackID, code: .unknownOp,
                                message: "no handler for event '\(event)': only \(loop.config.socketIO.joinEvent), \(loop.config.socketIO.leaveEvent) and \(loop.config.socketIO.publishEvent) are served")
            return
        }
        sioMetrics.eventsForwarded.add()
        let loopRef = loop
        let forwarded = SocketIOForwardedEvent(namespace: ns, event: event, arguments: arguments, attachments: attachments,
                                               user: authState?.identity?.user, wantsAnswer: ackID != nil)
        proxy.forward(forwarded) { result in
            loopRef.onLoop {
                guard let ackID, self.phase == .open, let sio = self.socketIO else { return }
                switch result {
                case .success(let args): self.performSocketIO(sio.session.answer(namespace: ns, ackID: ackID, arguments: args))
                case .failure(let e): self.socketIOAnswerError(namespace: ns, ackID: ackID, code: e.code, message: e.message)
                }
            }
        }
    }

    /// Answers a `join`: `[{"room":…,"offset":…,"recovered":…}]`.
    func socketIOJoined(namespace ns: String, ackID: Int?, room: String, offset: StreamOffset, recovered: Bool) {
        socketIOAnswer(namespace: ns, ackID: ackID, JSONFragment(bytes: Self.object([("room", .string(room)), ("offset", .string(offset.description)),
                                                                                   ("recovered", JSONFragment(recovered ? "true" : "false"))])))
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
    private static func object(_ fields: [(String, JSONFragment)]) -> [UInt8] {
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
