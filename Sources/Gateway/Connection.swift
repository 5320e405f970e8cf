import ClusterBus
import Glibc
import Protocol
import Runtime

/// One client socket, from accept to close: the HTTP upgrade (Connection+Handshake.swift), then RFC 6455
/// frames handed to the protocol personality chosen by the path (the JSON room protocol or echo).
///
/// Rules (phases, the close handshake, deadlines, outbound pressure) live in ``ConnectionMachine``; this
/// class does the I/O its answers call for. Loop-confined.
final class Connection: StreamSocket, TimerTarget, @unchecked Sendable {
    let id: UInt64
    /// Phases, deadlines, close handshake, outbound pressure; changed through its methods, then `syncTimer()`.
    var machine: ConnectionMachine
    /// What the client speaks once open (an index into `Personalities.all`: one byte per connection rather
    /// than a 16-byte existential); the room protocol until the upgrade says otherwise.
    var personalityIndex = Personalities.rooms
    var personality: any Personality { Personalities.all[Int(personalityIndex)] }
    /// Origin, admission and token state; nil when the node checks none of them (Auth/ConnectionAuth.swift).
    var authState: ConnectionAuthState?
    var http: HTTPHeadParser?
    var reader: WebSocketReader
    /// room → index in the loop room's member array.
    var roomSlots: [String: Int] = [:]
    /// The Socket.IO session when the personality is Socket.IO (SocketIOProtocol.swift), else nil.
    var socketIO: SocketIOConnectionState?
    /// Rooms held when the close began (they are left before the close log line is written).
    private var roomsAtClose = 0
    var requestID = ""
    /// permessage-deflate: the peer's window bits (9...15) when negotiated, else 0 (RFC 7692).
    var deflateWindowBits: UInt8 = 0
    /// permessage-deflate: the peer may take room-stream frames (no `server_no_context_takeover`, a window
    /// at least `--deflate-room-window-bits`).
    var deflateShared = false
    let acceptedAt: UInt64
    /// permessage-deflate: the ``SharedDeflateStream/Message/token`` of the last compressed frame queued, when
    /// it came from a room stream; 0 otherwise (the peer's window then matches no stream but at a reset).
    var deflateToken: UInt64 = 0
    /// Analytics: this connection's token bucket (created on the first event) and the last throttle notice.
    var analyticsBucket: TokenBucket?
    var lastThrottleNoticeAt: UInt64 = 0
    private(set) var timerGeneration: UInt32 = 0
    private var armedDeadline: UInt64 = 0

    /// The gateway loop this connection lives on (its socket context; no extra pointer per connection).
    var loop: GatewayLoop { unsafeDowncast(context, to: GatewayLoop.self) }
    var phase: ConnectionMachine.Phase { machine.phase }
    var now: UInt64 { loop.loop.now }
    var logID: LogValue { .string(String(id, radix: 16)) }

    /// `transport`: nil = the public port's (plain or TLS); a polling session passes its own.
    init(loop: GatewayLoop, fd: CInt, transport: (any Transport)? = nil) {
        self.id = loop.makeConnectionID()
        self.acceptedAt = loop.loop.now
        self.machine = ConnectionMachine(limits: loop.connectionLimits, now: loop.loop.now)
        self.http = HTTPHeadParser(maxHeadBytes: loop.config.maxHeadSize, maxHeaderCount: loop.config.maxHeaderCount)
        self.reader = WebSocketReader(role: .server, maxMessageSize: loop.config.maxMessageSize, maxFragments: loop.config.maxFragments)
        super.init(context: loop, fd: fd, transport: transport ?? loop.publicTransport(fd: fd))
    }

    /// Registers with the loop and arms the handshake deadline (counted from accept).
    func start() {
        guard register() else { return }
        loop.register(self)
        loop.node.socketCount.add(1, ordering: .relaxed)
        loop.metrics.connectionsAccepted.add()
        syncTimer()
    }

    /// Applies a change of the machine's authentication deadline.
    func setAuthDeadline(_ kind: ConnectionMachine.AuthDeadline, at: UInt64) {
        machine.setAuthDeadline(kind, at: at)
        syncTimer()
    }

    // MARK: - Input

    override func received(_ bytes: UnsafeMutableRawBufferPointer) {
        switch machine.phase {
        case .http: handleHTTP(bytes)
        case .authenticating: stashWhileAuthenticating(bytes)  // the auth backend is deciding
        case .open, .closing: if !machine.stopReading { feedFrames(bytes) }  // after a close: discard until EOF
        case .closed: return
        }
    }

    func feedFrames(_ bytes: UnsafeMutableRawBufferPointer) {
        do {
            try reader.feed(bytes, onDataFrame: { _ in self.frameArrived(isData: true) }, { event in self.handle(event) })
        } catch {
            loop.metrics.protocolErrors.add()
            loop.node.logger.rateLimited(
                .info, "protocol error",
                [
                    "conn": logID, "error": .string("\(error)"),
                    "close_code": .int(Int(error.closeCode.rawValue))
                ])
            fail(error.closeCode, reason: error.closeReason)
        }
    }

    /// Every inbound frame counts against `--max-frame-rate`: each data frame (continuations included) as its
    /// header is read, each control frame as it arrives. Returns false after failing the connection (1008).
    private func frameArrived(isData: Bool) -> Bool {
        guard machine.frameArrived(now: now, isData: isData) else {
            loop.metrics.frameRateCloses.add()
            loop.node.logger.rateLimited(.info, "inbound frame rate exceeded", ["conn": logID])
            fail(.policyViolation, reason: "too many frames")
            return false
        }
        return true
    }

    /// Handles one event; returns false to stop reading (after a close).
    private func handle(_ event: WebSocketEvent) -> Bool {
        switch event {
        case .text, .binary: break  // counted frame by frame in `onDataFrame`
        case .ping, .pong, .close: guard frameArrived(isData: false) else { return false }
        }
        switch event {
        case .text(let payload):
            loop.metrics.messagesIn.add()
            if phase == .open { personality.text(self, payload) }
        case .binary(let payload):
            loop.metrics.messagesIn.add()
            if phase == .open { personality.binary(self, payload) }
        case .ping(let payload):
            if phase == .open { enqueueFrame(Bytes(frame: .pong, payload: payload)) }
        case .pong:
            break
        case .close(let code, _):
            peerSentClose(code)
            return false
        }
        return !machine.stopReading
    }

    // MARK: - Output

    /// Sends one JSON text frame to this client.
    func send(_ json: [UInt8], class outboundClass: OutboundClass = .reliable) {
        guard phase == .open else { return }
        _ = json.withUnsafeBytes { enqueueFrame(frame(.text, $0), class: outboundClass) }
    }

    /// A frame for this client only: compressed when it negotiated permessage-deflate and the payload is
    /// over `--deflate-threshold` (and compression shrinks it), else plain.
    func frame(_ opcode: Opcode, _ payload: UnsafeRawBufferPointer) -> Bytes {
        if deflateWindowBits != 0, loop.config.deflate.shouldCompress(payloadLength: payload.count),
            let compressed = loop.compressedFrame(opcode, payload, windowBits: Int(deflateWindowBits))
        {
            return compressed
        }
        return Bytes(frame: opcode, payload: payload)
    }

    /// Queues a frame (for room messages, the bytes shared by every member), as
    /// ``ConnectionMachine/outbound(queuedBytes:frameBytes:droppable:now:)`` decides.
    @discardableResult
    func enqueueFrame(_ frame: Bytes, class outboundClass: OutboundClass = .reliable) -> EnqueueResult {
        guard phase == .open else { return .closed }
        if queuedBytes + frame.count > machine.limits.maxOutboundBytes && !isWriteBlocked {
            // Corked bytes from this iteration are not the client's fault: hand them to the kernel first.
            flushNow()
            guard phase == .open, !isClosed else { return .closed }
        }
        switch machine.outbound(queuedBytes: queuedBytes, frameBytes: frame.count, droppable: outboundClass == .droppable, now: now) {
        case .queue:
            loop.metrics.messagesOut.add()
            if deflateToken != 0 && frame.isCompressedFrame { deflateToken = 0 }
            enqueueRaw(frame)
            return .queued
        case .shed:
            loop.metrics.shedFrames.add()
            return .shed
        case .slowConsumer:
            loop.metrics.slowConsumerCloses.add()
            loop.node.logger.rateLimited(.info, "slow consumer closed", ["conn": logID, "queued_bytes": .int(queuedBytes)])
            discardUnsentQueue()
            fail(.slowConsumer, reason: "slow consumer")
            return .overLimit
        }
    }

    // MARK: - Closing (RFC 6455 §5.5.1, §7)

    /// The peer's close frame: answered with its code, then FIN (the server closes TCP first, §7.1.1).
    private func peerSentClose(_ code: CloseCode?) {
        let action = machine.peerClosed(code: code, now: now)
        if let reply = action.reply { enqueueRaw(Bytes.frame(.close, FrameEncoder.closePayload(code: reply))) }
        leaveAllRooms()
        if action.leftOpen { leftOpen() }
        shutdownWriteAfterFlush()
        syncTimer()
    }

    /// Fails the connection (§7.1.7): close frame with `code`, FIN, then a short wait for the peer's EOF.
    func fail(_ code: CloseCode, reason: String) { perform(machine.startClose(code, reason: reason, mode: .fail, now: now)) }

    /// A clean server-side close (reaping, drain): close frame, then up to the close timeout for the peer's.
    func close(_ code: CloseCode, reason: String) { perform(machine.startClose(code, reason: reason, mode: .clean, now: now)) }

    private func perform(_ action: ConnectionMachine.CloseAction) {
        switch action {
        case .sendClose(let code, let reason, let shutdown, let wasOpen):
            enqueueRaw(Bytes.frame(.close, FrameEncoder.closePayload(code: code, reason: reason)))
            leaveAllRooms()
            if wasOpen { leftOpen() }
            if shutdown { shutdownWriteAfterFlush() }
        case .shutdownAfterFlush:
            shutdownWriteAfterFlush()
        case .closeSocket:
            closeSocket()
        case .none:
            break
        }
        syncTimer()
    }

    /// Drain: the personality says when to reconnect (`reconnect {after_ms}`), then close 1012 (service
    /// restart) behind whatever is queued. Returns false when the connection was not open (a handshake in
    /// progress, e.g. waiting for the auth backend, is answered 503 with Retry-After).
    func drainClose(afterMs: Int) -> Bool {
        switch phase {
        case .open:
            personality.draining(self, afterMs: afterMs)
            close(.serviceRestart, reason: "server draining")
            return true
        case .http, .authenticating:
            rejectShuttingDown(retryAfterSeconds: max(1, (afterMs + 999) / 1000))
            return false
        case .closing, .closed:
            return false
        }
    }

    /// Bookkeeping done once when a WebSocket leaves `open`: gauge, close-code counter, the close log line.
    private func leftOpen() {
        let code = machine.closeCode ?? 1006
        loop.metrics.connectionsOpen.add(-1)
        loop.metrics.countClose(code)
        // Only the room protocol reports a `connect` (RoomProtocol.opened); a disconnect of an echo or
        // Socket.IO connection would reach the backend with no connect to pair it with.
        if personalityIndex == Personalities.rooms {
            loop.node.proxy?.connectionEvent("disconnect", user: authState?.identity?.user, connection: String(id, radix: 16), on: loop)
        }
        loop.node.logger.info(
            "connection closed",
            [
                "conn": logID, "request_id": .string(requestID), "protocol": .string(personality.name), "close_code": .int(Int(code)),
                "reason": .string(machine.closeReason), "duration_ms": .int(Int(now - acceptedAt)),
                "bytes_in": .int(bytesRead), "bytes_out": .int(bytesWritten),
                "rooms": .int(max(roomSlots.count, roomsAtClose))
            ])
    }

    private func leaveAllRooms() {
        if personalityIndex == Personalities.socketIO { socketIOSessionEnding() }  // the recovery record needs the rooms
        guard !roomSlots.isEmpty else { return }
        roomsAtClose = roomSlots.count
        for room in Array(roomSlots.keys) { loop.leave(self, room: room) }
    }

    override func peerClosed() {
        machine.transportEnded()
        closeSocket()
    }

    override func readFailed(errno: CInt) { peerClosed() }
    override func writeFailed(errno: CInt) { peerClosed() }

    override func didClose() {
        timerGeneration &+= 1
        authDidClose()
        loop.node.socketCount.add(-1, ordering: .relaxed)
        leaveAllRooms()
        if machine.socketClosed() { leftOpen() }
        loop.unregister(self)
    }

    // MARK: - Deadlines

    func timerFired(now: UInt64) {
        armedDeadline = 0
        while let due = machine.timerFired(now: now) {
            switch due {
            case .handshakeTimeout:
                loop.metrics.reapedHandshakeTimeout.add()
                loop.node.logger.rateLimited(.info, "handshake timeout", ["conn": logID])
                resetSocket()
                return
            case .closeTimeout:
                loop.metrics.reapedCloseTimeout.add()
                resetSocket()
                return
            case .idle:
                loop.metrics.reapedIdleTimeout.add()
                loop.node.logger.rateLimited(.info, "reaped: idle", ["conn": logID])
                close(.goingAway, reason: "idle timeout")
            case .pongTimeout:
                loop.metrics.reapedPingTimeout.add()
                loop.node.logger.rateLimited(.info, "reaped: no frame after ping", ["conn": logID])
                fail(.goingAway, reason: "ping timeout")
            case .sendPing:
                enqueueRaw(Bytes.frame(.ping, []))
            case .auth(let deadline):
                authDeadlinePassed(deadline)
            }
        }
        syncTimer()
    }

    /// Arms the timer wheel for the machine's deadline when it changed (a stale entry is ignored by generation).
    func syncTimer() {
        let d = machine.deadline
        guard d != armedDeadline, !isClosed else { return }
        armedDeadline = d
        timerGeneration &+= 1
        if d != 0 { loop.loop.schedule(self, generation: timerGeneration, deadline: d) }
    }
}
