import CLinux
import ClusterBus
import Foundation
import Glibc
import Protocol
import Runtime

/// One client socket, from accept to close: HTTP upgrade, then RFC 6455 frames carrying the JSON room
/// protocol (or verbatim echo on `--echo-path`).
///
/// Phases (each with a deadline on the loop's timer wheel, so no socket lives forever):
/// `http` (handshake timeout) → `open` (ping interval, then pong timeout) → `closing` (close timeout) → closed.
/// Loop-confined.
final class Connection: StreamSocket, TimerTarget, @unchecked Sendable {
    enum Phase: UInt8 { case http, open, closing, closed }
    enum Kind: UInt8 { case rooms, echo }

    let id: UInt64
    private(set) var phase = Phase.http
    private(set) var kind = Kind.rooms
    /// Origin, admission and token state; nil when the node checks none of them (Auth/ConnectionAuth.swift).
    var authState: ConnectionAuthState?
    private var http: HTTPHeadParser?
    private var reader: WebSocketReader
    /// room → index in the loop room's member array.
    var roomSlots: [String: Int] = [:]
    /// Rooms held when the close began (they are left before the close log line is written).
    private var roomsAtClose = 0
    var requestID = ""
    private let acceptedAt: UInt64
    private var bytesAtOpen = 0

    // Liveness: any inbound frame counts (documented in docs/protocol.md).
    private var lastFrameAt: UInt64 = 0
    private var lastDataAt: UInt64 = 0
    private var pingSentAt: UInt64 = 0
    private var nextPingAt: UInt64 = 0
    private var awaitingPong = false
    /// Inbound frame token bucket (room path): tokens left and when they were last refilled.
    private var frameTokens: Double = 0
    private var frameTokensAt: UInt64 = 0
    /// When the outbound queue first went over the high-water mark (0 = under it).
    private var overMarkSince: UInt64 = 0
    /// Analytics: this connection's token bucket (created on the first event) and the last throttle notice.
    var analyticsBucket: TokenBucket?
    var lastThrottleNoticeAt: UInt64 = 0
    private(set) var timerGeneration: UInt32 = 0
    private var closeSent = false
    /// Set once we failed the connection or saw the peer's close: later input is discarded (the reader
    /// must not be fed after an error or a close).
    private var stopReading = false
    private var closeCode: UInt16?
    private var closeReason = ""

    /// The gateway loop this connection lives on (its socket context; no extra pointer per connection).
    var loop: GatewayLoop { unsafeDowncast(context, to: GatewayLoop.self) }

    init(loop: GatewayLoop, fd: CInt) {
        self.id = loop.makeConnectionID()
        self.acceptedAt = loop.loop.now
        self.http = HTTPHeadParser(maxHeadBytes: loop.config.maxHeadSize, maxHeaderCount: loop.config.maxHeaderCount)
        self.reader = WebSocketReader(role: .server, maxMessageSize: loop.config.maxMessageSize)
        super.init(context: loop, fd: fd, transport: loop.publicTransport(fd: fd))
    }

    /// Registers with the loop and arms the handshake deadline.
    func start() {
        guard register() else { return }
        loop.register(self)
        loop.node.socketCount.add(1, ordering: .relaxed)
        loop.metrics.connectionsAccepted.add()
        arm(deadline: acceptedAt + UInt64(loop.config.handshakeTimeoutMs))
    }

    func arm(deadline: UInt64) {
        timerGeneration &+= 1
        loop.loop.schedule(self, generation: timerGeneration, deadline: deadline)
    }

    private func disarm() { timerGeneration &+= 1 }

    // MARK: - Input

    override func received(_ bytes: UnsafeMutableRawBufferPointer) {
        switch phase {
        case .http:
            if http == nil { stashWhileAuthenticating(bytes); return }   // the auth backend is deciding
            handleHTTP(bytes)
        case .open, .closing:
            if stopReading { return }   // lingering after a close: discard until EOF
            feedFrames(bytes)
        case .closed:
            return
        }
    }

    private func handleHTTP(_ bytes: UnsafeMutableRawBufferPointer) {
        let result: HTTPHeadParser.Result
        do {
            result = try http!.feed(UnsafeRawBufferPointer(bytes))
        } catch {
            reject(error)
            return
        }
        guard case .complete(let head, let consumed) = result else { return }
        http = nil
        upgrade(head)
        if phase == .open && consumed < bytes.count {
            // Frames pipelined right behind the request head.
            feedFrames(UnsafeMutableRawBufferPointer(rebasing: bytes[consumed...]))
        } else if phase == .http && consumed < bytes.count {
            stashWhileAuthenticating(UnsafeMutableRawBufferPointer(rebasing: bytes[consumed...]))
        }
    }

    private func upgrade(_ head: HTTPRequestHead) {
        let config = loop.config
        if head.path == config.wsPath {
            kind = .rooms
        } else if let echo = config.echoPath, head.path == echo {
            kind = .echo
        } else {
            reject(HTTPError(status: .notFound, reason: "no WebSocket endpoint at this path", headers: []))
            return
        }
        guard loop.node.isAccepting else {
            rejectShuttingDown(retryAfterSeconds: 1)
            return
        }
        guard loop.node.socketCount.load(ordering: .relaxed) <= config.maxConnections else {
            reject(HTTPError(status: .serviceUnavailable, reason: "node is at its connection limit", headers: [HTTPHeader("Retry-After", "1")]))
            return
        }
        let handshake: WebSocketHandshake
        do {
            handshake = try WebSocketHandshake.validate(head, supportedSubprotocols: config.subprotocols)
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
        let config = loop.config
        // A proxy's X-Request-ID is believed only from a trusted proxy (else anyone could forge log correlation).
        // getpeername only when something will use it (a syscall per handshake otherwise).
        let peer = !config.trustedProxies.isEmpty || loop.node.logger.isEnabled(.info) ? Socket.peerAddress(fd) : ""
        let proxied = config.trustedProxies.contains(peer) ? RequestID.from(head.headers["X-Request-ID"]) : nil
        requestID = proxied ?? RequestID.generate()
        enqueueRaw(Bytes(handshake.response(extraHeaders: [HTTPHeader("X-Request-ID", requestID)])))
        phase = .open
        lastFrameAt = loop.loop.now
        lastDataAt = loop.loop.now
        nextPingAt = loop.loop.now + UInt64(config.pingIntervalMs)
        frameTokens = Double(config.maxFrameRate) * 2
        frameTokensAt = loop.loop.now
        bytesAtOpen = 0
        loop.metrics.handshakesCompleted.add()
        loop.metrics.connectionsOpen.add()
        loop.node.logger.info("connection open", ["conn": .string(String(id, radix: 16)), "request_id": .string(requestID),
                                                  "path": .string(head.path), "peer": .string(peer), "loop": .int(loop.loop.index)])
        armOpenTimer()
        if kind == .rooms && helloAfterUpgrade { sendHello() }
        authDidUpgrade()
    }

    /// `hello`: after the upgrade, or after a successful `auth` op (then with the user).
    func sendHello() {
        var extra = [("loop", String(loop.loop.index))]
        if let user = authState?.identity?.user { extra.append(("user", user)) }
        send(Envelope.hello(node: loop.node.config.nodeID, session: String(id, radix: 16),
                            heartbeatSeconds: max(1, loop.config.pingIntervalMs / 1000), extra: extra))
    }

    /// Answers a failed handshake with its HTTP status and closes after the response is written.
    /// 503 for a handshake that arrives, or is still in progress, while the node drains.
    private func rejectShuttingDown(retryAfterSeconds: Int) {
        reject(HTTPError(status: .serviceUnavailable, reason: "node is shutting down", headers: [HTTPHeader("Retry-After", String(retryAfterSeconds))]))
    }

    func reject(_ error: HTTPError) {
        loop.metrics.countRejection(error.status.rawValue)
        loop.node.logger.rateLimited(.info, "handshake rejected", ["status": .int(error.status.rawValue), "reason": .string(error.reason),
                                                                   "peer": .string(Socket.peerAddress(fd))])
        http = nil
        phase = .closing
        enqueueRaw(loop.node.httpAnswer(HTTPResponse(error: error)))
        shutdownWriteAfterFlush()
        arm(deadline: loop.loop.now + UInt64(min(loop.config.closeTimeoutMs, 2000)))
    }

    func feedFrames(_ bytes: UnsafeMutableRawBufferPointer) {
        do {
            try reader.feed(bytes) { event in self.handle(event) }
        } catch {
            loop.metrics.protocolErrors.add()
            loop.node.logger.rateLimited(.info, "protocol error", ["conn": .string(String(id, radix: 16)), "error": .string("\(error)"),
                                                                   "close_code": .int(Int(error.closeCode.rawValue))])
            fail(error.closeCode, reason: Connection.reason(for: error))
        }
    }

    /// Handles one event; returns false to stop reading (after a close).
    private func handle(_ event: WebSocketEvent) -> Bool {
        let now = loop.loop.now
        lastFrameAt = now
        if kind == .rooms && loop.config.maxFrameRate > 0 && !takeFrameToken(now: now) {
            loop.metrics.frameRateCloses.add()
            loop.node.logger.rateLimited(.info, "inbound frame rate exceeded", ["conn": .string(String(id, radix: 16))])
            fail(.policyViolation, reason: "too many frames")
            return false
        }
        switch event {
        case .text(let payload):
            loop.metrics.messagesIn.add()
            lastDataAt = now
            guard phase == .open else { return true }
            if kind == .echo {
                enqueueFrame(Bytes(frame: .text, payload: payload))
            } else {
                handleRequest(payload)
            }
        case .binary(let payload):
            loop.metrics.messagesIn.add()
            lastDataAt = now
            guard phase == .open else { return true }
            if kind == .echo {
                enqueueFrame(Bytes(frame: .binary, payload: payload))
            } else {
                fail(.unsupportedData, reason: "binary frames are not part of the room protocol")
                return false
            }
        case .ping(let payload):
            if phase == .open { enqueueFrame(Bytes(frame: .pong, payload: payload)) }
        case .pong:
            break
        case .close(let code, _):
            peerSentClose(code)
            return false
        }
        return !stopReading
    }

    /// Token bucket: `--max-frame-rate` per second, burst two seconds' worth.
    private func takeFrameToken(now: UInt64) -> Bool {
        let rate = Double(loop.config.maxFrameRate)
        if now > frameTokensAt {
            frameTokens = min(rate * 2, frameTokens + Double(now - frameTokensAt) * rate / 1000)
            frameTokensAt = now
        }
        guard frameTokens >= 1 else { return false }
        frameTokens -= 1
        return true
    }

    // MARK: - Client protocol

    private func handleRequest(_ payload: UnsafeRawBufferPointer) {
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
            loop.node.bus.presence(room: room) { result in
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
        if !fresh {
            // Idempotent: a repeated join is acknowledged again and changes nothing; with `since` it replays
            // nothing either, since a member already receives every message live (no duplicates).
            let loopRef = loop
            loop.node.bus.join(room: room, since: nil) { result in
                loopRef.onLoop {
                    guard case .success(let r) = result else { return }
                    self.send(Envelope.joined(room: room, offset: r.offset.description, recovered: false, id: id))
                }
            }
            return
        }
        let loopRef = loop
        if sinceOffset != nil { loop.rooms[room]?.heldForResume[ObjectIdentifier(self)] = [] }
        loop.node.bus.join(room: room, since: sinceOffset) { result in
            loopRef.onLoop {
                guard self.phase == .open, self.roomSlots[room] != nil else { return }
                let held = self.loop.rooms[room]?.heldForResume.removeValue(forKey: ObjectIdentifier(self)) ?? []
                switch result {
                case .success(let r):
                    self.send(Envelope.joined(room: room, offset: r.offset.description, recovered: r.recovered, id: id))
                    for m in r.replay {
                        self.enqueueFrame(Bytes.frame(.text, Envelope.message(room: m.room, offset: m.offset.description, data: m.data)))
                    }
                    let replayed = r.recovered ? (r.replay.last?.offset ?? sinceOffset) : nil
                    // Live messages that arrived while the join was in flight, minus what the replay covered.
                    for (offset, frame) in held where replayed.map({ $0.epoch != offset.epoch || offset.isAfter($0) }) ?? true {
                        self.enqueueFrame(frame)
                    }
                    if let last = replayed {
                        self.loop.rooms[room]?.resumeFloors[ObjectIdentifier(self)] = last
                    }
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
        loop.node.bus.publish(room: room, data: data) { result in
            loopRef.onLoop {
                loopRef.metrics.busPublishLatency.observe(nanoseconds: Int(monotonicNanoseconds() &- started))
                switch result {
                case .success(let offset):
                    if let id { self.send(Envelope.ack(id: id, offset: offset.description)) }
                case .failure(let e):
                    self.loop.metrics.publishErrors.add()
                    let why: String
                    switch e { case .unavailable(let s), .invalid(let s): why = s }
                    self.send(Envelope.error(.unavailable, message: "publish failed: \(why)", id: id))
                }
            }
        }
    }

    /// Sends one JSON text frame to this client.
    func send(_ json: [UInt8], class outboundClass: OutboundClass = .reliable) {
        guard phase == .open else { return }
        enqueueFrame(Bytes.frame(.text, json), class: outboundClass)
    }

    /// What a queued frame may suffer under pressure (uWebSockets' SUCCESS / BACKPRESSURE / DROPPED).
    enum OutboundClass {
        /// Room messages, acks, errors: never dropped; a client that cannot keep up is closed and resumes.
        case reliable
        /// Presence answers, notices: shed first when the client is over the high-water mark.
        case droppable
    }

    /// What `enqueueFrame` did with a frame.
    enum EnqueueResult {
        case queued
        /// Dropped: a droppable frame while over the high-water mark.
        case shed
        /// The client was closed as a slow consumer (1008); the frame was not queued.
        case overLimit
        /// The connection is not open.
        case closed
    }

    /// Queues a frame (for room messages, the bytes shared by every member). Over the high-water mark
    /// (`--max-outbound-bytes`) droppable frames are shed; reliable ones are queued for at most
    /// `--slow-consumer-grace` and never past twice the mark, after which the client is closed with 1008
    /// and resumes from its last offset: room messages are never silently dropped.
    @discardableResult
    func enqueueFrame(_ frame: Bytes, class outboundClass: OutboundClass = .reliable) -> EnqueueResult {
        guard phase == .open else { return .closed }
        let mark = loop.config.maxOutboundBytes
        if queuedBytes + frame.count > mark && !isWriteBlocked {
            // Corked bytes from this iteration are not the client's fault: hand them to the kernel first.
            flushNow()
            guard phase == .open, !isClosed else { return .closed }
        }
        // An empty queue takes any frame (up to --max-message-size for echoes): a client with nothing
        // pending is not slow, however large one message is.
        if queuedBytes > 0 && queuedBytes + frame.count > mark {
            let now = loop.loop.now
            if outboundClass == .droppable {
                loop.metrics.shedFrames.add()
                return .shed
            }
            if overMarkSince == 0 { overMarkSince = now }
            if queuedBytes + frame.count > 2 * mark || now >= overMarkSince + UInt64(loop.config.slowConsumerGraceMs) {
                loop.metrics.slowConsumerCloses.add()
                loop.node.logger.rateLimited(.info, "slow consumer closed", ["conn": .string(String(id, radix: 16)), "queued_bytes": .int(queuedBytes)])
                discardUnsentQueue()
                fail(.policyViolation, reason: "slow consumer")
                return .overLimit
            }
        } else {
            overMarkSince = 0
        }
        loop.metrics.messagesOut.add()
        enqueueRaw(frame)
        return .queued
    }

    // MARK: - Closing (RFC 6455 §5.5.1, §7)

    /// The peer sent a close frame: answer with a close (echoing its code, §5.5.1), then the server closes
    /// TCP first (§7.1.1) once the reply is written.
    private func peerSentClose(_ code: CloseCode?) {
        stopReading = true
        if closeCode == nil { closeCode = code?.rawValue ?? 1005 }
        if !closeSent {
            closeSent = true
            enqueueRaw(Bytes.frame(.close, FrameEncoder.closePayload(code: code)))
        }
        leaveAllRooms()
        enterClosing(timeoutMs: min(loop.config.closeTimeoutMs, 2000))
        shutdownWriteAfterFlush()
    }

    /// Fails the connection (§7.1.7): close frame with `code`, FIN, then wait briefly for the peer's EOF.
    func fail(_ code: CloseCode, reason: String) {
        stopReading = true
        guard phase == .open else {
            if phase == .closing { shutdownWriteAfterFlush() }
            return
        }
        sendClose(code, reason: reason)
        enterClosing(timeoutMs: min(loop.config.closeTimeoutMs, 2000))
        shutdownWriteAfterFlush()
    }

    /// Starts a clean server-side close (shutdown, reaping): close frame, then wait up to the close timeout
    /// for the peer's close before closing the socket.
    func close(_ code: CloseCode, reason: String) {
        guard phase == .open else {
            if phase == .http { closeSocket() }
            return
        }
        sendClose(code, reason: reason)
        enterClosing(timeoutMs: loop.config.closeTimeoutMs)
    }

    /// Drain: tells the client when to reconnect (`reconnect {after_ms}`), then closes with 1012 (service
    /// restart) behind whatever is already queued. Returns false when the connection was not open
    /// (handshakes in progress, e.g. waiting for the auth backend, are answered 503 with Retry-After).
    func drainClose(afterMs: Int) -> Bool {
        guard phase == .open else {
            if phase == .http { rejectShuttingDown(retryAfterSeconds: max(1, (afterMs + 999) / 1000)) }
            return false
        }
        if kind == .rooms { send(Envelope.reconnect(afterMs: afterMs)) }
        close(.serviceRestart, reason: "server draining")
        return true
    }

    private func sendClose(_ code: CloseCode, reason: String) {
        closeCode = code.rawValue
        closeReason = reason
        if !closeSent {
            closeSent = true
            enqueueRaw(Bytes.frame(.close, FrameEncoder.closePayload(code: code, reason: reason)))
        }
        leaveAllRooms()
    }

    private func enterClosing(timeoutMs: Int) {
        guard phase != .closing && phase != .closed else { return }
        if phase == .open { leftOpen() }
        phase = .closing
        arm(deadline: loop.loop.now + UInt64(timeoutMs))
    }

    /// Bookkeeping done once when a WebSocket leaves `open`: gauge, close-code counter, the close log line.
    private func leftOpen() {
        loop.metrics.connectionsOpen.add(-1)
        loop.metrics.countClose(closeCode)
        loop.node.logger.info("connection closed", ["conn": .string(String(id, radix: 16)), "request_id": .string(requestID),
                                                    "close_code": .int(Int(closeCode ?? 1006)), "reason": .string(closeReason),
                                                    "duration_ms": .int(Int(loop.loop.now - acceptedAt)),
                                                    "bytes_in": .int(bytesRead), "bytes_out": .int(bytesWritten), "rooms": .int(max(roomSlots.count, roomsAtClose))])
    }

    private func leaveAllRooms() {
        guard !roomSlots.isEmpty else { return }
        roomsAtClose = roomSlots.count
        for room in Array(roomSlots.keys) { loop.leave(self, room: room) }
    }

    override func peerClosed() {
        if phase == .open && closeCode == nil { closeCode = 1006 }
        closeSocket()
    }

    override func didClose() {
        disarm()
        authDidClose()
        loop.node.socketCount.add(-1, ordering: .relaxed)
        leaveAllRooms()
        if phase == .open {
            if closeCode == nil { closeCode = 1006 }
            leftOpen()
        }
        phase = .closed
        loop.unregister(self)
    }

    // MARK: - Deadlines

    func timerFired(now: UInt64) {
        switch phase {
        case .http:
            loop.metrics.reapedHandshakeTimeout.add()
            loop.node.logger.rateLimited(.info, "handshake timeout", ["conn": .string(String(id, radix: 16))])
            resetSocket()
        case .open:
            let config = loop.config
            if config.idleTimeoutMs > 0 && now >= lastDataAt + UInt64(config.idleTimeoutMs) {
                loop.metrics.reapedIdleTimeout.add()
                loop.node.logger.rateLimited(.info, "reaped: idle", ["conn": .string(String(id, radix: 16))])
                close(.goingAway, reason: "idle timeout")
                return
            }
            if awaitingPong && now >= pingSentAt + UInt64(config.pongTimeoutMs) {
                if lastFrameAt < pingSentAt {
                    loop.metrics.reapedPingTimeout.add()
                    loop.node.logger.rateLimited(.info, "reaped: no frame after ping", ["conn": .string(String(id, radix: 16))])
                    fail(.goingAway, reason: "ping timeout")
                    return
                }
                awaitingPong = false
            }
            if !awaitingPong && now >= nextPingAt {
                awaitingPong = true
                pingSentAt = now
                nextPingAt = now + UInt64(config.pingIntervalMs)
                enqueueRaw(Bytes.frame(.ping, []))
            }
            armOpenTimer()
        case .closing:
            loop.metrics.reapedCloseTimeout.add()
            resetSocket()
        case .closed:
            break
        }
    }

    /// The next deadline while open: the pong deadline, the next ping, or the idle deadline.
    private func armOpenTimer() {
        let config = loop.config
        var next = awaitingPong ? pingSentAt + UInt64(config.pongTimeoutMs) : nextPingAt
        if config.idleTimeoutMs > 0 { next = min(next, lastDataAt + UInt64(config.idleTimeoutMs)) }
        arm(deadline: next)
    }

    override func readFailed(errno: CInt) {
        if closeCode == nil { closeCode = 1006 }
        closeSocket()
    }

    override func writeFailed(errno: CInt) {
        if closeCode == nil { closeCode = 1006 }
        closeSocket()
    }

    static func reason(for error: ProtocolError) -> String {
        switch error {
        case .unmaskedClientFrame: return "client frames must be masked"
        case .maskedServerFrame: return "server frames must not be masked"
        case .reservedBitsSet: return "RSV bits set without an extension"
        case .reservedOpcode(let o): return "reserved opcode \(o)"
        case .payloadLengthTopBitSet: return "64-bit length with the top bit set"
        case .controlFrameTooLong: return "control frame over 125 bytes"
        case .fragmentedControlFrame: return "fragmented control frame"
        case .unexpectedContinuation: return "continuation without a message"
        case .expectedContinuation: return "new message inside a fragmented one"
        case .messageTooLarge(let limit): return "message over \(limit) bytes"
        case .invalidUTF8: return "invalid UTF-8"
        case .invalidCloseCode(let c): return "invalid close code \(c)"
        case .invalidClosePayload: return "1-byte close payload"
        }
    }
}

extension GatewayLoop {
    /// Runs `body` on this loop: inline when already there (bus completions from LocalBus), else queued.
    func onLoop(_ body: @escaping @Sendable () -> Void) {
        if loop.inLoop { body() } else { loop.execute(body) }
    }
}

/// Request IDs carried by every log line of a connection and echoed as `X-Request-ID` in the 101.
enum RequestID {
    /// A proxy-supplied ID if it is 1...128 safe characters, else nil.
    static func from(_ value: String?) -> String? {
        guard let v = value, !v.isEmpty, v.utf8.count <= 128,
              v.utf8.allSatisfy({ ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x41 && $0 <= 0x5A) || ($0 >= 0x61 && $0 <= 0x7A) || $0 == 0x2D || $0 == 0x5F || $0 == 0x2E })
        else { return nil }
        return v
    }

    /// 16 random hex characters.
    static func generate() -> String {
        let v = UInt64.random(in: 0...UInt64.max)
        let s = String(v, radix: 16)
        return String(repeating: "0", count: 16 - s.count) + s
    }
}
