import CLinux
import Glibc
import Protocol
import Runtime

/// The HTTP side of Engine.IO long-polling on a connection: routing a request to its session (on the loop
/// that owns it), POST bodies, the open of a new session, the answers (SocketIOPolling.swift has the session).
extension Connection {
    /// Routes a polling request (GET opens or polls, POST sends) and an upgrade that carries a `sid`;
    /// returns true only for a WebSocket upgrade that should go on (a new session, or an upgrade probe).
    func routeEngineIO(_ head: HTTPRequestHead, _ request: EngineIORequest) -> Bool {
        let node = loop.node
        switch (request.transport, request.sid) {
        case (.websocket, nil):
            return true
        case (.websocket, .some(let sid)):
            guard let owner = SocketIOPollingSession.owner(of: sid, on: node), owner !== loop || loop.engineIO.sessions[sid] != nil else {
                rejectEngineIO(EngineIOHandshakeError(.unknownSessionID, detail: "no session with this sid on this node"))
                return false
            }
            loop.engineIO.pendingLinks[id] = sid
            return true
        case (.polling, nil):
            guard head.method == "GET" else {
                rejectEngineIO(EngineIOHandshakeError(.badHandshakeMethod, detail: "a session is opened with GET"))
                return false
            }
            openPollingSession(head)
        case (.polling, .some(let sid)):
            if head.method == "GET" {
                // Held up to a ping interval (plus the answer's time), not the handshake timeout.
                machine.beginAuthentication(until: now + UInt64(loop.config.socketIO.pingIntervalMs + loop.config.socketIO.pingTimeoutMs + 5000))
                syncTimer()
                loop.engineIO.heldPolls[id] = sid
                let http = self
                SocketIOPollingSession.with(sid, on: node) { s in
                    guard let s else {
                        return SocketIOPollingSession.answer(http, EngineIOHandshakeError(.unknownSessionID, detail: "no session with this sid on this node"))
                    }
                    s.poll(from: http)
                }
            } else if head.method == "POST" {
                guard let length = head.headers["Content-Length"].flatMap(HTTPHeaders.contentLength), head.headers["Transfer-Encoding"] == nil else {
                    rejectEngineIO(EngineIOHandshakeError(.badRequest, detail: "a POST needs a Content-Length"))
                    return false
                }
                guard length <= loop.config.socketIO.maxPayload else {
                    rejectEngineIO(EngineIOHandshakeError(.badRequest, detail: "body over maxPayload (\(loop.config.socketIO.maxPayload) bytes)"))
                    return false
                }
                loop.engineIO.posts[id] = EngineIOPendingPost(sid: sid, length: length)
                if length == 0 { socketIOBodyBytes(UnsafeMutableRawBufferPointer(start: nil, count: 0)) }
            } else {
                rejectEngineIO(EngineIOHandshakeError(.badRequest, detail: "polling takes GET and POST"))
            }
        }
        return false
    }

    /// Body bytes of a polling POST (the connection stays in `http` until the body is complete).
    func socketIOBodyBytes(_ bytes: UnsafeMutableRawBufferPointer) {
        guard let post = loop.engineIO.posts[id] else { return }
        post.body.append(contentsOf: bytes.prefix(post.length - post.body.count))
        guard post.body.count == post.length else { return }
        loop.engineIO.posts[id] = nil
        let http = self
        let body = post.body
        SocketIOPollingSession.with(post.sid, on: loop.node) { s in
            guard let s else {
                return SocketIOPollingSession.answer(http, EngineIOHandshakeError(.unknownSessionID, detail: "no session with this sid on this node"))
            }
            s.post(body, from: http)
        }
    }

    /// GET without sid: a new polling session on this loop, answered with its open packet. The request goes
    /// through the Origin check and per-IP admission like a WebSocket upgrade; the session holds the
    /// admission ticket (per-IP connection limit) until it ends.
    private func openPollingSession(_ head: HTTPRequestHead) {
        guard loop.node.isAccepting else { return rejectShuttingDown(retryAfterSeconds: 1) }
        guard loop.node.socketCount.load(ordering: .relaxed) <= loop.config.maxConnections else {
            return reject(HTTPError(status: .serviceUnavailable, reason: "node is at its connection limit", headers: [HTTPHeader("Retry-After", "1")]))
        }
        var sessionAuth: ConnectionAuthState?
        if loop.node.auth.isActive {
            guard let ip = admitPeer(head), let st = authState else { return }
            let moved = ConnectionAuthState()
            moved.admittedIP = st.admittedIP
            st.admittedIP = nil
            moved.context = AuthRequestContext(
                clientIP: ip,
                headers: AuthRequestContext.forwardedHeaders.compactMap { name in
                    head.headers[name].map { (name.lowercased(), $0) }
                })
            sessionAuth = moved
        }
        let efd = eventfd(0, CInt(EFD_NONBLOCK) | CInt(EFD_CLOEXEC))
        guard efd >= 0 else {
            return reject(HTTPError(status: .serviceUnavailable, reason: "out of descriptors", headers: [HTTPHeader("Retry-After", "1")]))
        }
        let transport = PollingTransport()
        let c = Connection(loop: loop, fd: efd, transport: transport)
        c.authState = sessionAuth
        let sid = SocketIOPollingSession.makeSID(loop: loop.loop.index)
        let s = SocketIOPollingSession(sid: sid, owner: loop, connection: c)
        transport.session = s
        loop.engineIO.sessions[sid] = s
        c.personalityIndex = Personalities.socketIO
        c.requestID = requestID.isEmpty ? RequestID.generate() : requestID
        loop.register(c)
        loop.node.socketCount.add(1, ordering: .relaxed)
        c.machine.opened(now: now, limits: loop.socketIOLimits)
        loop.metrics.connectionsOpen.add()
        loop.node.logger.info(
            "connection open",
            [
                "conn": c.logID, "request_id": .string(c.requestID), "protocol": .string("socketio"),
                "transport": .string("polling"), "peer": .string(Socket.peerAddress(fd))
            ])
        c.socketIOStart(transport: .polling, sid: sid, polling: s)
        c.syncTimer()
        // The open packet is in the connection's queue; it reaches the outbox when the loop flushes.
        s.poll(from: self)
        if s.heldPoll === self { machine.beginAuthentication(until: now + 5000); syncTimer() }
    }

    /// A 200 answer to a poll or a POST; the connection closes after it (`Connection: close`).
    func answerEngineIO(_ response: HTTPResponse) {
        loop.engineIO.heldPolls[id] = nil
        guard phase == .http || phase == .authenticating, !isClosed else { return }
        http = nil
        machine.rejected(now: now)
        syncTimer()
        enqueueRaw(loop.node.httpAnswer(response))
        shutdownWriteAfterFlush()
    }

    /// Sends one Engine.IO packet as a WebSocket frame on this connection.
    func socketIOSendPacket(_ packet: EngineIOPacket) {
        let (isBinary, payload) = packet.webSocketFrame
        payload.withUnsafeBytes { _ = enqueueFrame(frame(isBinary ? .binary : .text, $0)) }
    }
}
