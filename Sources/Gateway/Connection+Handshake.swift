import Protocol
import Runtime

/// The `http` phase of a connection: the upgrade request (RFC 6455 §4.2), the checks before the 101, and
/// the HTTP error answers.
extension Connection {
    func handleHTTP(_ bytes: UnsafeMutableRawBufferPointer) {
        let result: HTTPHeadParser.Result
        do {
            guard http != nil else { return socketIOBodyBytes(bytes) }  // a polling POST's body
            result = try http!.feed(UnsafeRawBufferPointer(bytes))
        } catch {
            reject(error)
            return
        }
        guard case .complete(let head, let consumed) = result else { return }
        http = nil
        upgrade(head)
        guard consumed < bytes.count else { return }
        let rest = UnsafeMutableRawBufferPointer(rebasing: bytes[consumed...])
        switch phase {
        case .open: feedFrames(rest)  // frames pipelined right behind the request head
        case .authenticating: stashWhileAuthenticating(rest)
        case .http: socketIOBodyBytes(rest)
        case .closing, .closed: break
        }
    }

    private func upgrade(_ head: HTTPRequestHead) {
        if head.path == loop.config.wsPath {
            personalityIndex = Personalities.rooms
        } else if let echo = loop.config.echoPath, head.path == echo {
            personalityIndex = Personalities.echo
        } else if loop.config.socketIO.matches(head.path) {
            personalityIndex = Personalities.socketIO
            guard routeSocketIO(head) else { return }  // polling and Engine.IO errors are answered there
        } else {
            reject(HTTPError(status: .notFound, reason: "no WebSocket endpoint at this path", headers: []))
            return
        }
        guard loop.node.isAccepting else {
            rejectShuttingDown(retryAfterSeconds: 1)
            return
        }
        guard loop.node.socketCount.load(ordering: .relaxed) <= loop.config.maxConnections else {
            reject(HTTPError(status: .serviceUnavailable, reason: "node is at its connection limit", headers: [HTTPHeader("Retry-After", "1")]))
            return
        }
        let handshake: WebSocketHandshake
        do {
            handshake = try WebSocketHandshake.validate(head, supportedSubprotocols: loop.config.subprotocols)
            if personalityIndex == Personalities.rooms { _ = try Self.urlJoinRooms(head, maxRooms: loop.config.maxRoomsPerConnection) }
        } catch {
            reject(error)
            return
        }
        // Origin (RFC 6455 §10.2), per-IP admission and the token, before any 101 (Auth/ConnectionAuth.swift).
        guard admitHandshake(head, handshake) else { return }
        completeUpgrade(head, handshake)
    }

    /// Sends the 101 and enters `open`: right after `upgrade`, or when the auth backend admitted a held handshake.
    func completeUpgrade(_ head: HTTPRequestHead, _ handshake: WebSocketHandshake) {
        // Fields are read through `loop.config`, never bound whole: a copy of `Config` retains every field.
        // A proxy's X-Request-ID is believed only from a trusted proxy (else anyone could forge log correlation).
        // getpeername only when something will use it (a syscall per handshake otherwise).
        let peer = !loop.config.trustedProxies.isEmpty || loop.node.logger.isEnabled(.info) ? Socket.peerAddress(fd) : ""
        let proxied = loop.config.trustedProxies.contains(peer) ? RequestID.from(head.headers["X-Request-ID"]) : nil
        requestID = proxied ?? loop.requestIDs.next()
        var extra = [HTTPHeader("X-Request-ID", requestID)]
        // RFC 7692: the first acceptable permessage-deflate offer; no client context takeover (one inflater per
        // loop) and server context takeover only through room streams (GatewayLoop+DeflateStreams.swift).
        if let deflate = PerMessageDeflate.negotiate(head.headers, settings: loop.config.deflate) {
            extra.append(deflate.responseHeader)
            deflateWindowBits = UInt8(deflate.serverMaxWindowBits)
            deflateShared = !deflate.serverNoContextTakeover && deflate.serverMaxWindowBits >= loop.config.deflate.sharedWindowBits
            reader = WebSocketReader(role: .server, maxMessageSize: loop.config.maxMessageSize, maxFragments: loop.config.maxFragments, deflate: loop.inflater)
        }
        enqueueRaw(Bytes(handshake.response(extraHeaders: extra)))
        machine.opened(now: now, limits: personality.limits(on: loop))
        syncTimer()
        loop.metrics.handshakesCompleted.add()
        loop.metrics.connectionsOpen.add()
        loop.node.logger.info(
            "connection open",
            [
                "conn": logID, "request_id": .string(requestID), "protocol": .string(personality.name),
                "path": .string(head.path), "peer": .string(peer), "loop": .int(loop.loop.index)
            ])
        personality.opened(self)
        authDidUpgrade()
        // Checked in `upgrade` before the 101 (re-read here: an auth backend's admission comes back with the head
        // only); `?join=` belongs to the room protocol only.
        if personalityIndex == Personalities.rooms, let rooms = try? Self.urlJoinRooms(head, maxRooms: loop.config.maxRoomsPerConnection) {
            joinURLRooms(rooms)
        }
    }

    /// 503 for a handshake that arrives, or is still in progress, while the node drains.
    func rejectShuttingDown(retryAfterSeconds: Int) {
        reject(HTTPError(status: .serviceUnavailable, reason: "node is shutting down", headers: [HTTPHeader("Retry-After", String(retryAfterSeconds))]))
    }

    /// Answers a failed handshake with its HTTP status and closes after the response is written.
    func reject(_ error: HTTPError) {
        rejectAnswer(HTTPResponse(error: error), status: error.status.rawValue, reason: error.reason)
    }

    /// Answers a failed handshake with `response` and closes after it is written.
    func rejectAnswer(_ response: HTTPResponse, status: Int, reason: String) {
        loop.metrics.countRejection(status)
        loop.node.logger.rateLimited(
            .info, "handshake rejected",
            [
                "status": .int(status), "reason": .string(reason),
                "peer": .string(Socket.peerAddress(fd))
            ])
        http = nil
        machine.rejected(now: now)
        syncTimer()
        enqueueRaw(loop.node.httpAnswer(response))
        shutdownWriteAfterFlush()
    }
}
