import ClusterBus
import Protocol
import Runtime

/// Switchboard's JSON room protocol on `--ws-path` (docs/protocol.md): `hello` after the upgrade, then
/// `auth`, `join`, `leave`, `publish`, `presence` and `analytics` ops, each answered or refused with an
/// `error` that echoes the frame's `id`. Binary messages are not part of it (1003).
final class RoomProtocol: Personality {
    static let shared = RoomProtocol()

    func limits(on loop: GatewayLoop) -> ConnectionLimits { loop.connectionLimits }

    func opened(_ c: Connection) {
        if c.helloAfterUpgrade { c.sendHello() }
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
        send(Envelope.hello(node: loop.node.config.nodeID, session: String(id, radix: 16),
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
        guard authorize(request) else { return }   // unauthorized / token_expired / forbidden (Auth/ConnectionAuth.swift)
        switch request {
        case .join(let room, let since):
            join(room: room, since: since, id: frameID)
        case .leave(let room):
            if loop.leave(self, room: room) {
                send(Envelope.left(room: room, id: frameID))
            } else {
                send(Envelope.error(.notJoined, message: "not a member of '\(room)'", id: frameID))
            }
        case .publish(let room, let data, let id):
            publish(room: room, data: data, id: id)
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

    private func join(room: String, since: String?, id: JSONFragment?) {
        let sinceOffset: StreamOffset?
        if let since {
            guard let o = StreamOffset(since) else {
                send(Envelope.error(.badRequest, message: "field 'since' is not an offset this server issued", id: id))
                return
            }
            sinceOffset = o
        } else {
            sinceOffset = nil
        }
        if roomSlots[room] == nil && roomSlots.count >= loop.config.maxRoomsPerConnection {
            send(Envelope.error(.tooManyRooms, message: "at most \(loop.config.maxRoomsPerConnection) rooms per connection", id: id))
            return
        }
        let fresh = loop.join(self, room: room)
        if !fresh || sinceOffset == nil {
            // A repeated join is idempotent: acknowledged again, changing nothing; with `since` it replays
            // nothing either, since a member already receives every message live (no duplicates). A plain
            // join needs the bus only for the room's first joins on this loop (Connection+Join.swift).
            answerPlainJoin(room: room, id: id, fresh: fresh)
            return
        }
        subscribeAndReplay(room: room, since: sinceOffset, id: id)
    }

    /// Asks the bus for the room's offset and, with `since`, the messages after it; answers `joined` and
    /// queues the replay, then the live messages held meanwhile that the replay did not cover (the resume
    /// seam, owned by `LoopRoom`). Used by `join` and by the resume after a token renewal.
    func subscribeAndReplay(room: String, since sinceOffset: StreamOffset?, id: JSONFragment?) {
        let loopRef = loop
        if sinceOffset != nil { loop.rooms[room]?.holdForResume(self) }
        loop.node.rooms.join(room: room, since: sinceOffset) { result in
            loopRef.onLoop {
                guard self.phase == .open, self.roomSlots[room] != nil else { return }
                switch result {
                case .success(let r):
                    self.loop.rooms[room]?.noteOffset(r.offset)
                    self.send(Envelope.joined(room: room, offset: r.offset.description, recovered: r.recovered, id: id))
                    for m in r.replay {
                        self.enqueueFrame(Bytes.frame(.text, Envelope.message(room: m.room, offset: m.offset.description, data: m.data)))
                    }
                    // Live messages that arrived while the join was in flight, minus what the replay covered.
                    let replayed = r.recovered ? (r.replay.last?.offset ?? sinceOffset) : nil
                    for frame in self.loop.rooms[room]?.endResume(self, replayedUpTo: replayed) ?? [] { self.enqueueFrame(frame) }
                case .failure:
                    self.loop.leave(self, room: room)
                    self.send(Envelope.error(.unavailable, message: "cannot join '\(room)': the bus is down", id: id))
                }
            }
        }
    }

    private func publish(room: String, data: JSONFragment, id: JSONFragment?) {
        loop.metrics.publishesClient.add()
        let loopRef = loop
        let started = monotonicNanoseconds()
        // Retries of one `id` in this session are stored once (node id + session: sessions of two nodes differ).
        let key = id.map { loop.node.config.nodeID + "/" + String(self.id, radix: 16) + ":" + String(decoding: $0.bytes, as: UTF8.self) }
        loop.node.rooms.publish(room: room, data: data, idempotencyKey: key) { result in
            loopRef.onLoop {
                loopRef.metrics.busPublishLatency.observe(nanoseconds: Int(monotonicNanoseconds() &- started))
                switch result {
                case .success(let offset):
                    if let id { self.send(Envelope.ack(id: id, offset: offset.description)) }
                case .failure(let e):
                    self.loop.metrics.publishErrors.add()
                    self.send(Envelope.error(e.errorCode, message: "publish failed: \(e.message)", id: id))
                }
            }
        }
    }
}
