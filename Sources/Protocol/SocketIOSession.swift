/// One Socket.IO client's session, sans I/O: Engine.IO v4 (heartbeat, upgrade) and Socket.IO v5
/// (namespaces, events, acks) as a state machine that is fed packets and a clock and returns
/// ``SocketIOAction``s for its owner to perform.
///
/// Time is milliseconds on any monotonic clock, passed in by the caller (tests use a fake one);
/// call ``tick(now:)`` at ``nextDeadline`` or later. Lifecycle: ``start(now:)`` sends the open
/// packet; packets from the active transport go to ``receive(_:now:)`` (or the decoding helpers
/// ``receive(text:now:)``, ``receive(binaryFrame:now:)``, ``receive(pollingBody:now:)``); packets
/// from a WebSocket probing an upgrade go to ``receiveOnProbe(_:now:)``. After a ``SocketIOAction/close(_:)``
/// every call returns no actions.
///
/// Decisions (docs/socketio.md): an EVENT or ACK for a namespace the client has not connected is
/// ignored and counted, not answered and not fatal (a client can race a server-side namespace
/// disconnect); duplicate and unknown ACKs are ignored and counted; a CONNECT for a namespace
/// already connected or pending is ignored and counted; a malformed packet closes the session, and
/// so does leaving the last namespace or connecting none within `connectTimeout`.
public struct SocketIOSession: Sendable {
    /// The settings.
    public let configuration: SocketIOSessionConfiguration
    /// The Engine.IO session id.
    public let sid: String
    /// The active transport: where ``SocketIOAction/send(_:)`` goes.
    public private(set) var transport: EngineIOTransport
    /// Namespaces the client is connected to.
    public private(set) var connectedNamespaces: Set<String> = []
    /// Namespaces whose CONNECT awaits ``connectResult(namespace:_:)``.
    public private(set) var authenticatingNamespaces: Set<String> = []
    /// Whether the session has closed.
    public private(set) var isClosed = false
    /// Packets dropped without closing.
    public private(set) var counters = SocketIOSessionCounters()

    private var assembler: SocketIOBinaryAssembler
    private var nextPingAt = 0
    private var pongDeadline: Int?
    private var connectDeadline: Int?
    private var probing = false
    private var nextAckID = 0
    private var pendingAcks: Set<AckKey> = []

    private struct AckKey: Hashable, Sendable {
        var namespace: String
        var id: Int
    }

    /// A session `sid` opened on `transport`.
    public init(sid: String, transport: EngineIOTransport, configuration: SocketIOSessionConfiguration = SocketIOSessionConfiguration()) {
        self.sid = sid
        self.transport = transport
        self.configuration = configuration
        assembler = SocketIOBinaryAssembler(limits: configuration.limits)
    }

    /// The open packet's data: `upgrades` is `["websocket"]` on polling and `[]` on a WebSocket (C35 step 1).
    public var open: EngineIOOpen {
        EngineIOOpen(
            sid: sid, upgrades: transport == .polling ? ["websocket"] : [], pingInterval: configuration.pingInterval,
            pingTimeout: configuration.pingTimeout, maxPayload: configuration.maxPayload)
    }

    /// Opens the session: sends the open packet; the first ping is due `pingInterval` later, and
    /// a namespace must be connected within `connectTimeout`.
    public mutating func start(now: Int) -> [SocketIOAction] {
        nextPingAt = now + configuration.pingInterval
        connectDeadline = now + configuration.connectTimeout
        return [.send(open.packet)]
    }

    /// When ``tick(now:)`` must be called next (milliseconds, same clock); nil once closed.
    public var nextDeadline: Int? {
        guard !isClosed else { return nil }
        let heartbeat = pongDeadline ?? nextPingAt
        return connectDeadline.map { min($0, heartbeat) } ?? heartbeat
    }

    /// Heartbeat: sends a ping when due; closes with `pingTimeout` when a ping went unanswered for
    /// `pingTimeout` ms, and with `connectTimeout` when no namespace was connected in time.
    public mutating func tick(now: Int) -> [SocketIOAction] {
        guard !isClosed else { return [] }
        if let deadline = connectDeadline, now >= deadline { return close(.connectTimeout) }
        if let deadline = pongDeadline {
            if now >= deadline { return close(.pingTimeout) }
            return []
        }
        guard now >= nextPingAt else { return [] }
        pongDeadline = now + configuration.pingTimeout
        return [.send(.ping([]))]
    }

    /// Closes the session from the server side (no packet is sent: the gateway closes the transports).
    public mutating func close() -> [SocketIOAction] {
        guard !isClosed else { return [] }
        return close(.serverClosed)
    }

    private mutating func close(_ reason: SocketIOCloseReason) -> [SocketIOAction] {
        isClosed = true
        connectedNamespaces = []
        authenticatingNamespaces = []
        pendingAcks = []
        return [.close(reason)]
    }

    // MARK: Input from the client

    /// A WebSocket text frame on the active transport. A `b`+base64 text frame is a binary
    /// message: engine.io-client sends binary that way on a WebSocket when `forceBase64` is set,
    /// and the reference decoder accepts it on every transport.
    public mutating func receive(text: [UInt8], now: Int) -> [SocketIOAction] {
        guard !isClosed else { return [] }
        do throws(EngineIOError) {
            let packet = try withBytes(of: text) { raw throws(EngineIOError) in
                try EngineIOPacket.decode(text: raw, base64Allowed: true, maxPayload: configuration.maxPayload)
            }
            return receive(packet, now: now)
        } catch {
            return close(.engineIOError(error))
        }
    }

    /// A WebSocket binary frame on the active transport (a binary message, e.g. an attachment).
    public mutating func receive(binaryFrame: [UInt8], now: Int) -> [SocketIOAction] {
        guard !isClosed else { return [] }
        guard binaryFrame.count <= configuration.maxPayload else { return close(.engineIOError(.payloadTooLarge(limit: configuration.maxPayload))) }
        return receive(.binary(binaryFrame), now: now)
    }

    /// A complete polling POST body, applied all or nothing: when any packet is bad, none is
    /// processed, the session closes with `engineIOError(.inPayload(index:…))` and the POST gets 400.
    public mutating func receive(pollingBody: [UInt8], now: Int) -> [SocketIOAction] {
        guard !isClosed else { return [] }
        let packets: [EngineIOPacket]
        do throws(EngineIOError) {
            packets = try EngineIOPayloadDecoder.decode(pollingBody, maxPayload: configuration.maxPayload)
        } catch {
            return close(.engineIOError(error))
        }
        var actions: [SocketIOAction] = []
        for packet in packets where !isClosed {
            actions += receive(packet, now: now)
        }
        return actions
    }

    /// One Engine.IO packet from the active transport.
    public mutating func receive(_ packet: EngineIOPacket, now: Int) -> [SocketIOAction] {
        guard !isClosed else { return [] }
        switch packet {
        case .pong:
            if pongDeadline != nil {
                pongDeadline = nil
                nextPingAt = now + configuration.pingInterval
            }
            return []
        case .ping:
            // v4 clients do not ping (the server does); a bare pong keeps simple tools working.
            // The data is not echoed: it could hold the 0x1E separator and break a polling answer.
            return [.send(.pong([]))]
        case .close:
            return close(.clientClosed)
        case .noop:
            return []
        case .open:
            return close(.unexpectedPacket("open packet from a client"))
        case .upgrade:
            return close(.unexpectedPacket("upgrade packet on the active transport"))
        case .message(let text):
            do throws(SocketIOError) {
                guard let message = try assembler.receive(text: text) else { return [] }
                return handle(message)
            } catch {
                return close(.socketIOError(error))
            }
        case .binary(let data):
            do throws(SocketIOError) {
                guard let message = try assembler.receive(binary: data) else { return [] }
                return handle(message)
            } catch {
                return close(.socketIOError(error))
            }
        }
    }

    /// One Engine.IO packet from a WebSocket opened with this sid to upgrade a polling session:
    /// `2probe` → `3probe` on it and a `6` noop on polling (so the pending poll returns and the
    /// client pauses polling); then `5` → ``SocketIOAction/upgraded``. Anything else closes the session.
    public mutating func receiveOnProbe(_ packet: EngineIOPacket, now: Int) -> [SocketIOAction] {
        guard !isClosed else { return [] }
        guard transport == .polling else { return close(.unexpectedPacket("upgrade probe on a WebSocket session")) }
        switch packet {
        case .ping(let data) where data == Array("probe".utf8):
            probing = true
            return [.sendOnProbe(.pong(data)), .send(.noop)]
        case .upgrade where probing:
            probing = false
            transport = .websocket
            return [.upgraded]
        default:
            return close(.unexpectedPacket("expected 2probe then 5 on the upgrading WebSocket"))
        }
    }

    // MARK: Socket.IO packets

    private mutating func handle(_ message: SocketIOMessage) -> [SocketIOAction] {
        let packet = message.packet
        let ns = packet.namespace
        switch packet.type {
        case .connect:
            guard configuration.namespaces.contains(ns) else {
                return [.send(SocketIOPacket.connectError(namespace: ns, message: "Invalid namespace").engineIOPacket)]
            }
            guard !connectedNamespaces.contains(ns), !authenticatingNamespaces.contains(ns) else {
                counters.duplicateConnects += 1
                return []
            }
            authenticatingNamespaces.insert(ns)
            return [.authenticate(namespace: ns, auth: packet.payload, recovery: Self.recovery(in: packet.payload))]
        case .disconnect:
            authenticatingNamespaces.remove(ns)
            guard connectedNamespaces.remove(ns) != nil else { return [] }
            pendingAcks = pendingAcks.filter { $0.namespace != ns }
            // Leaving the last namespace ends the session, as the reference server does
            // (socket.io-client closes its Engine.IO connection then anyway).
            guard connectedNamespaces.isEmpty, authenticatingNamespaces.isEmpty else { return [.namespaceClosed(namespace: ns)] }
            return [.namespaceClosed(namespace: ns)] + close(.clientClosed)
        case .event, .binaryEvent:
            guard connectedNamespaces.contains(ns) else {
                counters.unconnectedNamespacePackets += 1
                return []
            }
            return event(packet, attachments: message.attachments)
        case .ack, .binaryAck:
            guard connectedNamespaces.contains(ns) else {
                counters.unconnectedNamespacePackets += 1
                return []
            }
            guard let id = packet.ackID, pendingAcks.remove(AckKey(namespace: ns, id: id)) != nil else {
                counters.ignoredAcks += 1
                return []
            }
            return [.ackReceived(namespace: ns, id: id, arguments: packet.arguments, attachments: message.attachments)]
        case .connectError:
            return close(.socketIOError(.serverOnlyPacket))  // the decoder refuses it already
        }
    }

    private mutating func event(_ packet: SocketIOPacket, attachments: [[UInt8]]) -> [SocketIOAction] {
        let ns = packet.namespace
        let name = packet.eventName ?? ""
        let args = packet.arguments
        let isRoomOp = name == configuration.joinEvent || name == configuration.leaveEvent || name == configuration.publishEvent
        guard isRoomOp else {
            return [.forward(namespace: ns, event: name, arguments: args, attachments: attachments, ackID: packet.ackID)]
        }
        func reject(_ code: ErrorCode, _ text: String) -> [SocketIOAction] {
            counters.rejectedRoomOps += 1
            guard let id = packet.ackID else { return [] }
            return answerError(namespace: ns, ackID: id, code: code, message: text)
        }
        if !attachments.isEmpty {
            return reject(.badRequest, "room ops carry JSON only; binary attachments are not supported")
        }
        guard let roomArg = args.first, let room = Self.string(roomArg) else {
            return reject(.badRequest, "the first argument of '\(name)' must be the room name")
        }
        guard Envelope.isValidRoomName(room) else {
            return reject(.invalidRoom, "room must be 1-200 printable ASCII characters without space, quote or backslash")
        }
        if name == configuration.joinEvent {
            var since: String?
            if args.count > 1, args[1] != .null {
                guard let s = Self.string(args[1]) else { return reject(.badRequest, "the second argument of '\(name)' (since) must be an offset string") }
                since = s
            }
            return [.join(namespace: ns, room: room, since: since, ackID: packet.ackID)]
        }
        if name == configuration.leaveEvent {
            return [.leave(namespace: ns, room: room, ackID: packet.ackID)]
        }
        guard args.count >= 2 else { return reject(.badRequest, "'\(name)' needs the room and the data") }
        return [.publish(namespace: ns, room: room, data: args[1], ackID: packet.ackID)]
    }

    /// The decoded JSON string `fragment`, nil when it is not a string literal.
    private static func string(_ fragment: JSONFragment) -> String? {
        fragment.bytes.withUnsafeBytes { SocketIOJSONScanner.decodeString($0, 0..<$0.count) }
    }

    /// `pid` and `offset` of a CONNECT payload, when `pid` is a string (socket.io-client sends
    /// both together; `offset` may be missing if it received no event).
    static func recovery(in payload: JSONFragment?) -> SocketIORecovery? {
        // The payload is an object already validated and bounded by maxPayload; this is its one parse.
        guard let payload, payload.bytes.contains(UInt8(ascii: "p")),
            let object = payload.bytes.withUnsafeBytes({ JSONValue.parse($0) }) as? [String: Any],
            let pidValue = object["pid"], case .string(let pid) = JSONValue(pidValue)
        else { return nil }
        var offset: String?
        if let value = object["offset"], case .string(let s) = JSONValue(value) { offset = s }
        return SocketIORecovery(pid: pid, offset: offset)
    }

    // MARK: Output from the server

    /// The result of an ``SocketIOAction/authenticate(namespace:auth:recovery:)``: sends the CONNECT
    /// answer (`40…{"sid":…}`) or CONNECT_ERROR (`44…{"message":…}`). Nothing when the namespace is
    /// no longer waiting (the client disconnected it meanwhile, or the session closed).
    public mutating func connectResult(namespace: String, _ result: SocketIOConnectResult) -> [SocketIOAction] {
        guard !isClosed, authenticatingNamespaces.remove(namespace) != nil else { return [] }
        switch result {
        case .accepted(let socketID, let pid):
            connectedNamespaces.insert(namespace)
            connectDeadline = nil
            return [.send(SocketIOPacket.connectAccepted(namespace: namespace, sid: socketID, pid: pid).engineIOPacket)]
        case .rejected(let message, let data):
            return [.send(SocketIOPacket.connectError(namespace: namespace, message: message, data: data).engineIOPacket)]
        }
    }

    /// Emits `event` to the client on `namespace`; with `expectingAck`, allocates an ack id
    /// (the answer comes back as ``SocketIOAction/ackReceived(namespace:id:arguments:attachments:)``).
    /// Binary `attachments` make it a BINARY_EVENT (the arguments must hold their placeholders).
    /// Returns no actions and a nil id when the namespace is not connected, and when
    /// `expectingAck` and `maxPendingAcks` ids are already pending.
    public mutating func emit(
        namespace: String, event: String, arguments: [JSONFragment], attachments: [[UInt8]] = [],
        expectingAck: Bool = false
    ) -> (ackID: Int?, actions: [SocketIOAction]) {
        guard !isClosed, connectedNamespaces.contains(namespace) else { return (nil, []) }
        var id: Int?
        if expectingAck {
            guard pendingAcks.count < configuration.maxPendingAcks else { return (nil, []) }
            id = nextAckID
            nextAckID = nextAckID == configuration.limits.maxAckID ? 0 : nextAckID + 1
            pendingAcks.insert(AckKey(namespace: namespace, id: id!))
        }
        let packet = SocketIOPacket.event(namespace: namespace, name: event, arguments: arguments, ackID: id, attachments: attachments.count)
        return (id, [.send(packet.engineIOPacket)] + attachments.map { .send(.binary($0)) })
    }

    /// A room message as the configured message event: `42<ns,>["message","<room>",<data>,"<offset>"]`.
    /// The offset is the last argument, a string, which is what socket.io-client records for recovery.
    public mutating func roomMessage(namespace: String, room: String, data: JSONFragment, offset: String) -> [SocketIOAction] {
        emit(namespace: namespace, event: configuration.messageEvent, arguments: [.string(room), data, .string(offset)]).actions
    }

    /// Answers the client's event `ackID` on `namespace` with `arguments` (`43<ns,><id>[…]`,
    /// namespace kept: C36 step 3); with `attachments`, a BINARY_ACK (`46<n>-<ns,><id>[…]` then the
    /// binary messages; the arguments hold their placeholders). Nothing when the namespace is no longer connected.
    public func answer(namespace: String, ackID: Int, arguments: [JSONFragment], attachments: [[UInt8]] = []) -> [SocketIOAction] {
        guard !isClosed, connectedNamespaces.contains(namespace) else { return [] }
        let packet = SocketIOPacket.ack(namespace: namespace, id: ackID, arguments: arguments, attachments: attachments.count)
        return [.send(packet.engineIOPacket)] + attachments.map { .send(.binary($0)) }
    }

    /// Answers `ackID` with one error object: `[{"error":"<code>","message":"…"}]`.
    public func answerError(namespace: String, ackID: Int, code: ErrorCode, message: String) -> [SocketIOAction] {
        var out: [UInt8] = Array(#"{"error":"#.utf8)
        appendJSONString(code.rawValue, to: &out)
        out.append(contentsOf: #","message":"#.utf8)
        appendJSONString(message, to: &out)
        out.append(UInt8(ascii: "}"))
        return answer(namespace: namespace, ackID: ackID, arguments: [JSONFragment(bytes: out)])
    }

    /// Ends the client's membership of `namespace` from the server side (`41<ns,>`).
    public mutating func disconnect(namespace: String) -> [SocketIOAction] {
        guard !isClosed, connectedNamespaces.remove(namespace) != nil else { return [] }
        pendingAcks = pendingAcks.filter { $0.namespace != namespace }
        return [.send(SocketIOPacket.disconnect(namespace: namespace).engineIOPacket)]
    }
}
