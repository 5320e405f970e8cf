import ClusterBus
import Protocol
import Runtime
import Synchronization

/// What a node does with the server API's cluster-wide commands (ServerAPI.swift, Control.swift): each runs
/// on every loop of the node, never blocking one, and answers how many connections it changed.
extension GatewayNode {
    /// Server API commands to every node, and the node list.
    var control: ControlBus { services.control }

    /// Applies `command` on this node and calls `reply` once with its answer (from any thread).
    func handleControl(_ command: ControlCommand, reply: @escaping @Sendable (ControlAnswer) -> Void) {
        let id = config.nodeID
        switch command.kind {
        case .disconnect, .subscribe, .unsubscribe:
            guard let user = command.user else { return reply(ControlAnswer(node: id, affected: 0)) }
            onEveryLoop({ gl in gl.applyControl(command, user: user) }, completion: { n in reply(ControlAnswer(node: id, affected: n)) })
        case .rooms:
            let pattern = command.pattern.map { RoomPattern($0) }
            let (items, more) = page(
                hub.rooms.withLock { map in
                    map.compactMap { name, s in
                        guard pattern?.matches(name, user: "") ?? true, command.after.map({ Self.byteOrder($0, name) }) ?? true else { return nil }
                        return NamedCount(name: name, count: s.total)
                    }
                }, limit: command.limit ?? 100)
            reply(ControlAnswer(node: id, affected: 0, items: items, more: more))
        case .presenceUsers:
            let users = hub.rooms.withLock { $0[command.room ?? ""]?.users ?? [:] }
            let (items, more) = page(
                users.compactMap { user, n in
                    command.after.map { Self.byteOrder($0, user) } ?? true ? NamedCount(name: user, count: n) : nil
                }, limit: command.limit ?? 100)
            reply(ControlAnswer(node: id, affected: 0, items: items, more: more))
        }
    }

    /// True when `a` sorts before `b` by UTF-8 bytes (the API's paging order on every node).
    static func byteOrder(_ a: String, _ b: String) -> Bool { a.utf8.lexicographicallyPrecedes(b.utf8) }

    private func page(_ all: [NamedCount], limit: Int) -> ([NamedCount], Bool) {
        let sorted = all.sorted { Self.byteOrder($0.name, $1.name) }
        return (Array(sorted.prefix(max(1, limit))), sorted.count > max(1, limit))
    }

    /// Runs `body` on every loop and calls `completion` with the sum once all have (any thread).
    func onEveryLoop(_ body: @escaping @Sendable (GatewayLoop) -> Int, completion: @escaping @Sendable (Int) -> Void) {
        let state = Lock<(sum: Int, left: Int)>((0, loops.count))
        guard !loops.isEmpty else { return completion(0) }
        for gl in loops {
            gl.loop.execute {
                let n = body(gl)
                let done: Int? = state.withLock { s in
                    s.sum += n
                    s.left -= 1
                    return s.left == 0 ? s.sum : nil
                }
                if let done { completion(done) }
            }
        }
    }
}

extension GatewayLoop {
    /// Applies a per-user command to this loop's connections of `user`; returns how many changed.
    /// A scan of the loop's connections: commands are rare, and no per-user index costs every connect.
    func applyControl(_ command: ControlCommand, user: String) -> Int {
        var n = 0
        for c in Array(connections.values) where c.phase == .open && c.authState?.identity?.user == user {
            switch command.kind {
            case .disconnect:
                if c.personalityIndex == Personalities.rooms {
                    c.send(Envelope.disconnect(code: command.code ?? 4009, reason: command.reason ?? "", reconnect: command.reconnect ?? true))
                }
                c.close(CloseCode(rawValue: UInt16(clamping: command.code ?? 4009)), reason: command.reason ?? "")
                n += 1
            case .subscribe:
                guard let room = command.room, c.roomSlots[room] == nil, c.roomSlots.count < config.maxRoomsPerConnection else { continue }
                if let sio = c.socketIO {
                    // Socket.IO: the room's messages arrive as `message` events on the default namespace; the
                    // client is not told otherwise (Socket.IO has no server-initiated join notice).
                    sio.roomNamespaces[room] = "/"
                    c.joinRoom(room, since: nil, origin: .socketIO(namespace: "/", ackID: nil))
                } else if c.personalityIndex == Personalities.rooms {
                    _ = join(c, room: room)
                    c.subscribeAndReplay(room: room, since: nil, origin: .envelope(id: nil))
                } else {
                    continue
                }
                n += 1
            case .unsubscribe:
                guard let room = command.room, leave(c, room: room) else { continue }
                if let sio = c.socketIO {
                    sio.roomNamespaces[room] = nil
                } else {
                    c.send(Envelope.left(room: room))
                }
                n += 1
            case .rooms, .presenceUsers:
                break
            }
        }
        return n
    }
}

extension Envelope {
    /// `{"op":"disconnect","code":…,"reason":…,"reconnect":bool}`: sent before a server API disconnect's
    /// close frame; `reconnect` false asks the client not to reconnect on its own (docs/api.md).
    static func disconnect(code: Int, reason: String, reconnect: Bool) -> [UInt8] {
        Array("{\"op\":\"disconnect\",\"code\":\(code),\"reason\":\(js(reason)),\"reconnect\":\(reconnect)}".utf8)
    }
}
