import ClusterBus
import Foundation
import Protocol
import Runtime

/// The auth side of one connection: where it is in authentication, who it is, its pending deadline (auth
/// timeout, token expiry, grace) and its admission ticket. Allocated only when the node checks anything
/// (``AuthService/isActive``), so a dev-mode connection carries one nil reference. Loop-confined.
final class ConnectionAuthState {
    enum Status {
        /// Nothing to check on this connection (no token required, or the echo path).
        case open
        /// Upgraded without a token: only `auth` is accepted until the auth timeout (then 4001).
        case awaitingToken
        /// Authenticated: ops are checked against ``identity``.
        case authenticated
        /// The token expired: `auth` with a fresh one within the grace period, or close 4003.
        case expired
    }

    var status = Status.open
    var identity: AuthIdentity?
    /// A token is being checked (handshake or `auth` op); a second `auth` meanwhile is refused.
    var checking = false
    /// When the current token's `exp` plus leeway passes, on the loop's monotonic clock (0 = never).
    var expiresAtLoopMs: UInt64 = 0
    /// While expired: each room's offset when delivery stopped, where it resumes after a fresh `auth`.
    var suspendedAt: [String: StreamOffset?] = [:]
    /// The IP counted by admission, released on close.
    var admittedIP: String?
    /// What the backend is told (kept only when a backend is configured).
    var context: AuthRequestContext?
    /// The handshake held while the backend decides (before the 101).
    var pendingHead: HTTPRequestHead?
    var pendingHandshake: WebSocketHandshake?
    /// Bytes the client pipelined behind its head while the backend decides (at most ``stashLimit``).
    var stash: [UInt8] = []
    static let stashLimit = 64 * 1024
}

extension Connection {
    private var authService: AuthService { loop.node.auth }

    // MARK: - Handshake

    /// Runs the checks between a valid upgrade request and the 101, in order: Origin (403, RFC 6455 §10.2),
    /// per-IP admission (429 / 503 with Retry-After), then the token (401 when it fails; 503 when the backend
    /// cannot decide). Returns true to send the 101 now; false when the request was answered or is waiting
    /// for the auth backend (``completeUpgrade`` then runs when it answers).
    func admitHandshake(_ head: HTTPRequestHead, _ handshake: WebSocketHandshake) -> Bool {
        let svc = authService
        guard svc.isActive else { return true }
        guard let ip = admitPeer(head), let st = authState else { return false }
        guard svc.requiresToken else { return true }
        if svc.backend != nil {
            st.context = AuthRequestContext(
                clientIP: ip,
                headers: AuthRequestContext.forwardedHeaders.compactMap { name in
                    head.headers[name].map { (name.lowercased(), $0) }
                })
        }
        // Socket.IO authenticates each namespace CONNECT (its auth object), after the upgrade.
        guard personality is RoomProtocol else { return true }
        guard let token = svc.token(from: head) else {
            st.status = .awaitingToken
            return true
        }
        st.checking = true
        let outcome = svc.authenticate(token: token, context: st.context ?? AuthRequestContext(clientIP: ip, headers: []), on: loop) { outcome in
            self.handshakeAuthFinished(outcome)
        }
        if let outcome { return applyHandshakeOutcome(outcome) }
        // The backend decides: hold the request (no 101 yet) and keep the socket past the handshake deadline
        // for as long as the backend call may take.
        st.pendingHead = head
        st.pendingHandshake = handshake
        machine.beginAuthentication(until: now + UInt64((svc.backend?.policy.deadlineMs ?? 0) + 1000))
        syncTimer()
        return false
    }

    /// Origin (403, RFC 6455 §10.2) and per-IP admission (429 / 503 with Retry-After) of a request: the
    /// checks before any token, for WebSocket upgrades and Socket.IO polling opens alike. Returns the
    /// client address, or nil when the request was refused (answered). Only when the node checks anything.
    func admitPeer(_ head: HTTPRequestHead) -> String? {
        let svc = authService
        let st = ConnectionAuthState()
        authState = st
        let m = loop.metrics.auth
        let origins = head.headers.values("Origin")
        guard origins.count <= 1, svc.origins.allows(origins.first) else {
            m.originRejected.add()
            reject(HTTPError(status: .forbidden, reason: origins.isEmpty ? "an Origin header is required" : "origin not allowed"))
            return nil
        }
        let ip = clientAddress(peer: Socket.peerAddress(fd), forwardedFor: head.headers.values("X-Forwarded-For"), trusted: loop.config.trustedProxies)
        switch svc.admission.admit(ip) {
        case .admitted:
            if svc.admission.isActive { st.admittedIP = ip }
        case .tooManyConnections(let after):
            m.admissionConnections.add()
            reject(HTTPError(status: .tooManyRequests, reason: "too many connections from this address", headers: [HTTPHeader("Retry-After", String(after))]))
            return nil
        case .tooManyHandshakes(let after):
            m.admissionRate.add()
            reject(HTTPError(status: .tooManyRequests, reason: "too many handshakes from this address", headers: [HTTPHeader("Retry-After", String(after))]))
            return nil
        case .overCapacity(let after):
            m.admissionCapacity.add()
            reject(HTTPError(status: .serviceUnavailable, reason: "admission table full", headers: [HTTPHeader("Retry-After", String(after))]))
            return nil
        }
        return ip
    }

    /// Turns a handshake's auth outcome into an answer; true = send the 101.
    private func applyHandshakeOutcome(_ outcome: AuthOutcome) -> Bool {
        guard let st = authState else { return false }
        st.checking = false
        let m = loop.metrics.auth
        let bearer = HTTPHeader("WWW-Authenticate", "Bearer error=\"invalid_token\"")
        switch outcome {
        case .admitted(let identity):
            m.count(.ok)
            st.identity = identity
            st.status = .authenticated
            return true
        case .invalid(let error):
            m.count(.invalid)
            loop.node.logger.rateLimited(
                .info, "token refused", ["rule": .string(error.label), "peer": .string(st.context?.clientIP ?? Socket.peerAddress(fd))])
            reject(HTTPError(status: .unauthorized, reason: error.reason, headers: [bearer]))
        case .rejected(let reason):
            m.count(.rejected)
            reject(HTTPError(status: .unauthorized, reason: reason, headers: [bearer]))
        case .unavailable(let after, let reason):
            m.count(.unavailable)
            reject(HTTPError(status: .serviceUnavailable, reason: reason, headers: [HTTPHeader("Retry-After", String(after))]))
        }
        return false
    }

    /// The backend answered for a held handshake.
    private func handshakeAuthFinished(_ outcome: AuthOutcome) {
        guard phase == .authenticating, !isClosed, let st = authState, let head = st.pendingHead, let handshake = st.pendingHandshake else { return }
        st.pendingHead = nil
        st.pendingHandshake = nil
        guard applyHandshakeOutcome(outcome) else { return }
        completeUpgrade(head, handshake)
        if phase == .open && !st.stash.isEmpty {
            var pipelined = st.stash
            st.stash = []
            pipelined.withUnsafeMutableBytes { feedFrames($0) }
        }
    }

    /// Keeps bytes that arrive while a handshake waits for the backend; a client that sends more than
    /// 64 KiB before its 101 is dropped.
    func stashWhileAuthenticating(_ bytes: UnsafeMutableRawBufferPointer) {
        guard let st = authState, st.pendingHead != nil, st.stash.count + bytes.count <= ConnectionAuthState.stashLimit else {
            closeSocket()
            return
        }
        st.stash.append(contentsOf: bytes)
    }

    /// Whether the upgrade should be followed by `hello` now (false while the `auth` op is awaited).
    var helloAfterUpgrade: Bool { authState?.status != .awaitingToken }

    /// After the 101: arms the auth timeout (token-less) or the expiry of the token.
    func authDidUpgrade() {
        guard let st = authState else { return }
        switch st.status {
        case .awaitingToken:
            setAuthDeadline(.authTimeout, at: now + UInt64(authService.authTimeoutMs))
        case .authenticated:
            scheduleExpiry()
        case .open, .expired:
            break
        }
    }

    /// The machine's authentication deadline passed (Connection.timerFired).
    func authDeadlinePassed(_ deadline: ConnectionMachine.AuthDeadline) {
        switch deadline {
        case .authTimeout: authTimedOut()
        case .expiryNotice: expiryNotice()
        case .expiry: tokenExpired()
        case .graceEnd: graceEnded()
        case .none: break
        }
    }

    private func authTimedOut() {
        guard phase == .open, let st = authState, st.status == .awaitingToken, !st.checking else { return }
        loop.metrics.auth.count(.timeout)
        fail(.authTimeout, reason: "no auth within \(authService.authTimeoutMs / 1000) s")
    }

    // MARK: - Ops

    /// `{"op":"auth","token":…}`: authenticates a token-less connection, renews an expiring one, or refreshes
    /// a valid one (same user only). Success answers `hello`; a bad token closes 4002; an unavailable
    /// backend closes 1013 (or, for a refresh while the current token is still valid, answers `error
    /// unavailable` and keeps the session).
    func handleAuthOp(_ token: String) {
        let svc = authService
        guard svc.requiresToken, personality is RoomProtocol, let st = authState else {
            send(Envelope.error(.badRequest, message: "authentication is not configured on this node"))
            return
        }
        guard !st.checking else {
            send(Envelope.error(.badRequest, message: "an authentication is already in progress"))
            return
        }
        if st.status == .awaitingToken { setAuthDeadline(.none, at: 0) }
        st.checking = true
        let ctx = st.context ?? AuthRequestContext(clientIP: Socket.peerAddress(fd), headers: [])
        if let outcome = svc.authenticate(token: token, context: ctx, on: loop, completion: { outcome in self.applyOpOutcome(outcome) }) {
            applyOpOutcome(outcome)
        }
    }

    private func applyOpOutcome(_ outcome: AuthOutcome) {
        guard phase == .open, let st = authState else { return }
        st.checking = false
        let m = loop.metrics.auth
        switch outcome {
        case .admitted(let identity):
            if let old = st.identity, old.user != identity.user {
                m.count(.invalid)
                fail(.authFailed, reason: "token is for another user")
                return
            }
            m.count(.ok)
            st.identity = identity
            st.status = .authenticated
            scheduleExpiry()
            for room in roomSlots.keys.sorted() where !identity.mayJoin(room) {
                loop.leave(self, room: room)
                send(Envelope.left(room: room))
            }
            sendHello()
            resumeSuspendedRooms()
        case .invalid(.expired):
            // A refresh with a token that is itself expired: the session's token lapsed, not a bad credential.
            m.count(.invalid)
            fail(.tokenExpired, reason: JWTError.expired.reason)
        case .invalid(let error):
            m.count(.invalid)
            fail(.authFailed, reason: error.reason)
        case .rejected(let reason):
            m.count(.rejected)
            fail(.authFailed, reason: reason)
        case .unavailable(let after, let reason):
            m.count(.unavailable)
            if st.status == .authenticated {
                send(Envelope.error(.unavailable, message: reason, extra: [("retry_after_ms", after * 1000)]))
            } else {
                fail(.tryAgainLater, reason: reason)
            }
        }
    }

    /// Checks one op against the connection's authentication and claims; answers the refusal itself and
    /// returns false when the op must not run. Dev mode and the echo path allow everything. `id` is the
    /// frame's `id`, echoed by the refusal as by every error a frame causes (docs/protocol.md).
    func authorize(_ request: ClientRequest, id frameID: JSONFragment?) -> Bool {
        guard let st = authState, st.status != .open else { return true }
        if case .auth = request { return true }
        switch st.status {
        case .open:
            return true
        case .awaitingToken:
            send(Envelope.error(.unauthorized, message: "authenticate first: send {\"op\":\"auth\",\"token\":…}", id: frameID))
            return false
        case .expired:
            if case .leave = request { return true }
            send(Envelope.error(.tokenExpired, message: "token expired: send auth with a fresh token", id: frameID))
            return false
        case .authenticated:
            guard let id = st.identity else { return false }
            switch request {
            case .join(let room, _), .presence(let room):
                guard id.mayJoin(room) else {
                    loop.metrics.auth.forbiddenJoins.add()
                    send(Envelope.error(.forbidden, message: "not allowed to join '\(room)'", id: frameID))
                    return false
                }
            case .publish(let room, _, _):
                guard id.mayPublish(room) else {
                    loop.metrics.auth.forbiddenPublishes.add()
                    send(Envelope.error(.forbidden, message: "not allowed to publish to '\(room)'", id: frameID))
                    return false
                }
            case .analytics, .rpc:
                // A console ticket's identity is no user of the application: nothing goes to the backend as it.
                guard !id.tailOnly else {
                    send(Envelope.error(.forbidden, message: "this identity may only join, leave and ask presence", id: frameID))
                    return false
                }
            case .leave, .auth:
                break
            }
            return true
        }
    }

    // MARK: - Expiry

    /// Arms the deadlines of the current identity on the machine: the `token_expiring` notice ahead of `exp`,
    /// then the expiry at `exp` + leeway (wall-clock times mapped onto the loop's monotonic clock).
    private func scheduleExpiry() {
        guard let st = authState else { return }
        st.expiresAtLoopMs = 0
        guard let exp = st.identity?.expiresAt else { return setAuthDeadline(.none, at: 0) }
        let wall = Double(wallClockMilliseconds())
        let untilExp = max(0, exp * 1000 - wall)
        let untilExpiry = max(0, (exp + authService.leewaySeconds) * 1000 - wall)
        st.expiresAtLoopMs = now + UInt64(min(untilExpiry, Double(Int32.max)))
        // The notice goes out `--token-expiring-notice` before exp, or halfway through what is left if that is less.
        let lead = min(Double(authService.expiringNoticeMs), untilExp / 2)
        if authService.expiringNoticeMs > 0 && untilExp > 0 {
            setAuthDeadline(.expiryNotice, at: now + UInt64(min(untilExp - lead, Double(Int32.max))))
        } else {
            setAuthDeadline(.expiry, at: st.expiresAtLoopMs)
        }
    }

    /// `token_expiring {expires_in_ms}`: the client should fetch a fresh token and send `auth` before exp.
    private func expiryNotice() {
        guard phase == .open, let st = authState, st.status == .authenticated, let exp = st.identity?.expiresAt else { return }
        let left = max(0, Int(exp * 1000 - Double(wallClockMilliseconds())))
        loop.metrics.auth.expiringNotices.add()
        send(Envelope.tokenExpiring(expiresInMs: left))
        setAuthDeadline(.expiry, at: st.expiresAtLoopMs)
    }

    private func tokenExpired() {
        guard phase == .open, let st = authState, st.status == .authenticated else { return }
        st.status = .expired
        // No room message reaches an expired session; a fresh `auth` resumes each room from here.
        for room in roomSlots.keys { st.suspendedAt[room] = .some(loop.rooms[room]?.suspend(self)) }
        let grace = authService.graceMs
        send(Envelope.error(.tokenExpired, message: "token expired: send auth with a fresh token within \(grace / 1000) s", extra: [("grace_ms", grace)]))
        setAuthDeadline(.graceEnd, at: now + UInt64(grace))
    }

    /// After a fresh `auth`: every room delivery stopped at expiry resumes from where it stopped, through the
    /// resume seam (a `joined` with `recovered`, the missed messages, then live ones; no gap, no duplicate).
    private func resumeSuspendedRooms() {
        guard let st = authState, !st.suspendedAt.isEmpty else { return }
        let rooms = st.suspendedAt
        st.suspendedAt = [:]
        for (room, since) in rooms.sorted(by: { $0.key < $1.key }) where roomSlots[room] != nil {
            loop.rooms[room]?.unsuspend(self)
            subscribeAndReplay(room: room, since: since ?? nil, origin: .envelope(id: nil))
        }
    }

    private func graceEnded() {
        guard phase == .open, let st = authState, st.status == .expired else { return }
        loop.metrics.auth.count(.expired)
        fail(.tokenExpired, reason: "token expired")
    }

    // MARK: - Close

    /// Releases the admission ticket and the pending deadline; idempotent.
    func authDidClose() {
        guard let st = authState else { return }
        st.pendingHead = nil
        st.pendingHandshake = nil
        st.stash = []
        if let ip = st.admittedIP {
            st.admittedIP = nil
            authService.admission.release(ip)
        }
    }
}
