import ClusterBus
import Protocol
import Runtime

/// Switchboard's JSON room protocol on `--ws-path` (docs/protocol.md): `hello` after the upgrade, then
/// `auth`, `join`, `leave`, `publish`, `presence` and `analytics` ops, each answered or refused with an
/// `error` that echoes the frame's `id`. Binary messages are not part of it (1003).
final class RoomProtocol: Personality {
    static let shared = RoomProtocol()
    let name = "rooms"

    func limits(on loop: GatewayLoop) -> ConnectionLimits { loop.connectionLimits }

    func opened(_ c: Connection) {
        if c.helloAfterUpgrade { c.sendHello() }
        c.loop.node.proxy?.connectionEvent("connect", user: c.authState?.identity?.user, connection: String(c.id, radix: 16), on: c.loop)
    }

    func text(_ c: Connection, _ payload: UnsafeRawBufferPointer) { c.handleRequest(payload) }

    func binary(_ c: Connection, _ payload: UnsafeRawBufferPointer) {
        c.fail(.unsupportedData, reason: "binary frames are not part of the room protocol")
    }

    func draining(_ c: Connection, afterMs: Int) { c.send(Envelope.reconnect(afterMs: afterMs)) }
}

extension Connection {
    /// `hello`: after the upgrade, or after a successful `auth` op (then with the user).
    func sendHello() {
        var extra = [("loop", String(loop.loop.index))]
        if let user = authState?.identity?.user { extra.append(("user", user)) }
        send(
            Envelope.hello(
                node: loop.node.config.nodeID, session: String(id, radix: 16),
                heartbeatSeconds: max(1, loop.config.pingIntervalMs / 1000), extra: extra))
    }

    fileprivate func handleRequest(_ payload: UnsafeRawBufferPointer) {
        let request: ClientRequest
        // The frame's `id`, echoed by answers and errors (not the connection's X-Request-ID).
        let frameID: JSONFragment?
        do {
            (request, frameID) = try Envelope.decodeWithID(payload)
        } catch {
            loop.metrics.envelopeErrors.add()
            send(Envelope.error(error.code, message: error.message, id: error.id))
            return
        }
        guard authorize(request, id: frameID) else { return }  // unauthorized / token_expired / forbidden (Auth/ConnectionAuth.swift)
        switch request {
        case .join(let room, let since):
            joinRoom(room, since: since, origin: .envelope(id: frameID))
        case .leave(let room):
            if loop.leave(self, room: room) {
                send(Envelope.left(room: room, id: frameID))
            } else {
                send(Envelope.error(.notJoined, message: "not a member of '\(room)'", id: frameID))
            }
        case .publish(let room, let data, let id):
            // Retries of one `id` in this session are stored once (node id + session: sessions of two nodes differ).
            let key = id.map { loop.node.config.nodeID + "/" + String(self.id, radix: 16) + ":" + String(decoding: $0.bytes, as: UTF8.self) }
            publishToRoom(room, data: data, idempotencyKey: key, origin: .envelope(id: id))
        case .rpc(let method, let data):
            rpc(method: method, data: data, id: frameID)
        case .presence(let room):
            let loopRef = loop
            loop.node.presence.presence(room: room) { result in
                loopRef.onLoop {
                    switch result {
                    case .success(let p): self.send(Envelope.presence(room: room, count: p.connections, users: p.users, id: frameID), class: .droppable)
                    case .failure: self.send(Envelope.error(.unavailable, message: "presence is unavailable: the bus is down", id: frameID))
                    }
                }
            }
        case .auth(let token):
            handleAuthOp(token)
        case .analytics(let event, let data, let room):
            // The user's budget is shared across the cluster; without auth the session is the user.
            handleAnalytics(event: event, data: data, room: room, user: authState?.identity?.user ?? String(id, radix: 16))
        }
    }

    /// `join` of any personality: checks `since` and the room limit, joins the loop's room, then answers
    /// through `origin` (`joined` with the offset, or an error). A repeated join is acknowledged again and
    /// changes nothing.
    func joinRoom(_ room: String, since: String?, origin: RoomOpOrigin) {
        let sinceOffset: StreamOffset?
        if let since {
            guard let o = StreamOffset(since) else {
                answerRoomError(origin, .badRequest, "field 'since' is not an offset this server issued")
                return
            }
            sinceOffset = o
        } else {
            sinceOffset = nil
        }
        if roomSlots[room] == nil && roomSlots.count >= loop.config.maxRoomsPerConnection {
            answerRoomError(origin, .tooManyRooms, "at most \(loop.config.maxRoomsPerConnection) rooms per connection")
            return
        }
        let fresh = loop.join(self, room: room)
        if !fresh || sinceOffset == nil {
            // A repeated join is idempotent: acknowledged again, changing nothing; with `since` it replays
            // nothing either, since a member already receives every message live (no duplicates). A plain
            // join needs the bus only for the room's first joins on this loop (Connection+Join.swift).
            answerPlainJoin(room: room, origin: origin, fresh: fresh)
            return
        }
        subscribeAndReplay(room: room, since: sinceOffset, origin: origin)
    }

    /// Asks the bus for the room's offset and, with `since`, the messages after it; answers `joined` and
    /// queues the replay, then the live messages held meanwhile that the replay did not cover (the resume
    /// seam, owned by `LoopRoom`). Used by `join`, by the resume after a token renewal and by Socket.IO recovery.
    func subscribeAndReplay(room: String, since sinceOffset: StreamOffset?, origin: RoomOpOrigin) {
        let loopRef = loop
        if sinceOffset != nil { loop.rooms[room]?.holdForResume(self) }
        loop.node.rooms.join(room: room, since: sinceOffset) { result in
            loopRef.onLoop {
                guard self.phase == .open, self.roomSlots[room] != nil else { return }
                switch result {
                case .success(let r):
                    self.loop.rooms[room]?.noteOffset(r.offset)
                    self.answerJoined(origin, room: room, offset: r.offset, recovered: r.recovered)
                    for m in r.replay {
                        self.enqueueFrame(self.roomMessageFrame(room: m.room, offset: m.offset, data: m.data))
                    }
                    // Live messages that arrived while the join was in flight, minus what the replay covered.
                    let replayed = r.recovered ? (r.replay.last?.offset ?? sinceOffset) : nil
                    for frame in self.loop.rooms[room]?.endResume(self, replayedUpTo: replayed) ?? [] { self.enqueueFrame(frame) }
                case .failure:
                    self.loop.leave(self, room: room)
                    self.answerRoomError(origin, .unavailable, "cannot join '\(room)': the bus is down")
                }
            }
        }
    }

    /// `rpc`: forwarded to `--proxy-url`; the answer or the failure comes back as `rpc_result` with the id.
    private func rpc(method: String, data: JSONFragment?, id: JSONFragment?) {
        guard let proxy = loop.node.proxy else {
            send(Envelope.rpcResult(id: id, .failure(code: "unavailable", message: "rpc is off on this server (no --proxy-url)")))
            return
        }
        proxy.proxyRPC(user: authState?.identity?.user, connection: String(self.id, radix: 16), method: method, data: data, on: loop) { outcome in
            self.send(Envelope.rpcResult(id: id, outcome))
        }
    }

    /// `publish` of any personality: a `--proxy-publish` room asks the backend first (allow, maybe rewriting
    /// `data`, or refuse); then `data` goes to the bus and the answer goes through `origin` with the offset
    /// (or the error). `idempotencyKey`: retries with the same key are stored once.
    func publishToRoom(_ room: String, data: JSONFragment, idempotencyKey key: String?, origin: RoomOpOrigin) {
        guard let proxy = loop.node.proxy, proxy.proxiesPublish(to: room) else {
            return publishToBus(room, data: data, idempotencyKey: key, origin: origin)
        }
        proxy.proxyPublish(user: authState?.identity?.user, connection: String(self.id, radix: 16), room: room, data: data, on: loop) { decision in
            guard self.phase == .open else { return }
            switch decision {
            case .allow(let final):
                self.publishToBus(room, data: final, idempotencyKey: key, origin: origin)
            case .refuse(let reason):
                self.answerRoomError(origin, .refused, reason)
            case .unavailable(let why):
                self.loop.metrics.publishErrors.add()
                self.answerRoomError(origin, .unavailable, "publish failed: \(why)")
            }
        }
    }

    private func publishToBus(_ room: String, data: JSONFragment, idempotencyKey key: String?, origin: RoomOpOrigin) {
        loop.metrics.publishesClient.add()
        let loopRef = loop
        let started = monotonicNanoseconds()
        loop.node.rooms.publish(room: room, data: data, idempotencyKey: key) { result in
            loopRef.onLoop {
                loopRef.metrics.busPublishLatency.observe(nanoseconds: Int(monotonicNanoseconds() &- started))
                switch result {
                case .success(let offset):
                    self.answerPublished(origin, offset: offset)
                case .failure(let e):
                    self.loop.metrics.publishErrors.add()
                    self.answerRoomError(origin, e.errorCode, "publish failed: \(e.message)")
                }
            }
        }
    }

    /// A room message as this connection's protocol frames it (the fan-out shares one frame per protocol
    /// and namespace instead; this is for replays).
    func roomMessageFrame(room: String, offset: StreamOffset, data: JSONFragment) -> Bytes {
        if let sio = socketIO {
            return SocketIOConnectionState.messageFrame(
                namespace: sio.roomNamespaces[room] ?? "/", room: room, offset: offset.description,
                data: data, config: loop.config.socketIO)
        }
        return Bytes.frame(.text, Envelope.message(room: room, offset: offset.description, data: data))
    }

    /// `joined {room, offset, recovered}` in the asker's protocol.
    func answerJoined(_ origin: RoomOpOrigin, room: String, offset: StreamOffset, recovered: Bool) {
        switch origin {
        case .envelope(let id): send(Envelope.joined(room: room, offset: offset.description, recovered: recovered, id: id))
        case .socketIO(let ns, let ackID): socketIOJoined(namespace: ns, ackID: ackID, room: room, offset: offset, recovered: recovered)
        }
    }

    /// The publish's offset in the asker's protocol (`ack` / an ack `[{"offset":…}]`).
    func answerPublished(_ origin: RoomOpOrigin, offset: StreamOffset) {
        switch origin {
        case .envelope(let id): if let id { send(Envelope.ack(id: id, offset: offset.description)) }
        case .socketIO(let ns, let ackID): socketIOAnswerOffset(namespace: ns, ackID: ackID, offset: offset)
        }
    }

    /// A refused or failed room op in the asker's protocol (`error` / an error ack).
    func answerRoomError(_ origin: RoomOpOrigin, _ code: ErrorCode, _ message: String) {
        switch origin {
        case .envelope(let id): send(Envelope.error(code, message: message, id: id))
        case .socketIO(let ns, let ackID): socketIOAnswerError(namespace: ns, ackID: ackID, code: code, message: message)
        }
    }
}

/// Who asked for a room op, so the shared join / resume / publish paths answer in the asker's protocol.
enum RoomOpOrigin: Sendable {
    /// The JSON room protocol: the frame's `id`, echoed by the answer (nil: none).
    case envelope(id: JSONFragment?)
    /// Socket.IO: the namespace the op came through and its ack id (nil: no answer wanted).
    case socketIO(namespace: String, ackID: Int?)
}
