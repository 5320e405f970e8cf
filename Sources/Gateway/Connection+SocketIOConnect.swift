import ClusterBus
import Foundation
import Protocol
import Runtime

/// The CONNECT of a Socket.IO namespace: its token through the JWT / auth-backend path, connection-state
/// recovery from the record of an earlier session (written by any node), and the token's expiry.
extension Connection {
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
    func socketIOAuthenticate(namespace ns: String, auth: JSONFragment?, recovery: SocketIORecovery?) {
        let svc = loop.node.auth
        guard svc.requiresToken else { return socketIOAdmit(namespace: ns, recovery: recovery) }
        guard let token = auth.flatMap(Self.tokenField) else {
            loop.metrics.auth.count(.invalid)
            return socketIOConnectRefused(namespace: ns, message: "authentication required: connect with auth {token}")
        }
        let ctx = authState?.context ?? AuthRequestContext(clientIP: Socket.peerAddress(fd), headers: [])
        if let outcome = svc.authenticate(
            token: token, context: ctx, on: loop,
            completion: { outcome in
                self.socketIOAuthenticated(namespace: ns, recovery: recovery, outcome)
            })
        {
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
            let rooms = object["rooms"] as? [[String: String]]
        else { return nil }
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
}
