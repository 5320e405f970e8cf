import CLinux
import Glibc
import Protocol
import Runtime

/// Engine.IO HTTP long-polling (socketio/engine.io-protocol v4, "HTTP long-polling"), the transport
/// socket.io-client and python-socketio open with before upgrading to a WebSocket.
///
/// A polling session is a ``Connection`` without a socket of its own: an eventfd that is never polled
/// stands in for its descriptor, and its ``PollingTransport`` turns the frames the connection writes
/// (room messages, acks, pings: the same code paths as a WebSocket session) back into Engine.IO packets
/// for the session's ``EngineIOPollingOutbox``, or, after an upgrade, forwards them to the WebSocket. So
/// rooms, auth, recovery, the drain and the metrics see one kind of member.
///
/// The session lives on the loop that opened it; its `sid` starts with that loop's index (two hex
/// digits), and GETs, POSTs and the upgrading WebSocket that arrive on another loop hop there and back.
/// Loop-confined to its owner loop.
final class SocketIOPollingSession: @unchecked Sendable {
    let sid: String
    /// The loop that owns the session.
    unowned(unsafe) let owner: GatewayLoop
    /// The session's connection (personality Socket.IO, transport ``PollingTransport``).
    let connection: Connection
    /// Packets waiting for the next GET (bounded by `--max-outbound-bytes`).
    var outbox: EngineIOPollingOutbox
    /// The GET being held (on any loop), answered as soon as a packet is queued.
    var heldPoll: Connection?
    /// The WebSocket probing an upgrade and, once `upgraded`, the session's transport.
    var webSocket: Connection?
    private(set) var upgraded = false
    private(set) var ended = false

    init(sid: String, owner: GatewayLoop, connection: Connection) {
        self.sid = sid
        self.owner = owner
        self.connection = connection
        outbox = EngineIOPollingOutbox(maxQueuedBytes: owner.config.maxOutboundBytes)
    }

    /// A new sid for a session on `loop`: its index in two hex digits, then 20 random characters.
    static func makeSID(loop: Int) -> String {
        let hex = String(loop, radix: 16)
        return (hex.count == 1 ? "0" + hex : hex) + SocketIOConnectionState.randomID()
    }

    /// The loop that owns `sid` on `node`, from its prefix; nil when it names none.
    static func owner(of sid: String, on node: GatewayNode) -> GatewayLoop? {
        guard let i = loopIndex(of: sid), i < node.loops.count else { return nil }
        return node.loops[i]
    }

    /// The loop index a sid names (its first two characters, lowercase hex: 0...255), nil when the sid
    /// does not have ``makeSID(loop:)``'s shape. The sid comes from the client: `Int(_:radix:)` alone would
    /// accept "-1" or "+1", and a negative index traps.
    static func loopIndex(of sid: String) -> Int? {
        let u = sid.utf8
        guard u.count == 22 else { return nil }
        var i = 0
        for c in u.prefix(2) {
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): i = i << 4 | Int(c - UInt8(ascii: "0"))
            case UInt8(ascii: "a")...UInt8(ascii: "f"): i = i << 4 | Int(c - UInt8(ascii: "a") + 10)
            default: return nil
            }
        }
        return i
    }

    /// Runs `body` on the owner loop of `sid` with its session (nil when the node holds none).
    static func with(_ sid: String, on node: GatewayNode, _ body: @escaping @Sendable (SocketIOPollingSession?) -> Void) {
        guard let loop = owner(of: sid, on: node) else { return body(nil) }
        loop.onLoop { body(loop.engineIO.sessions[sid]) }
    }

    // MARK: - From the client

    /// A GET: answered now with what is queued, held until something is, or refused (a second concurrent
    /// GET is a protocol error: 400 code 3, and the session closes; after an upgrade polls get code 3 too).
    func poll(from http: Connection) {
        guard !ended else { return Self.answer(http, EngineIOHandshakeError(.unknownSessionID, detail: "the session ended")) }
        guard !upgraded else { return Self.answer(http, EngineIOHandshakeError(.badRequest, detail: "the session was upgraded to a WebSocket")) }
        switch outbox.poll() {
        case .respond(let body): Self.answer(http, body)
        case .hold: heldPoll = http
        case .duplicatePoll:
            Self.answer(http, EngineIOHandshakeError(.badRequest, detail: "a poll is already pending for this session"))
            connection.fail(.policyViolation, reason: "duplicate poll")
        }
    }

    /// A POST body, applied all or nothing: "ok", or 400 code 3 when a packet is bad (the session closes).
    func post(_ body: [UInt8], from http: Connection) {
        guard !ended, let sio = connection.socketIO else { return Self.answer(http, EngineIOHandshakeError(.unknownSessionID, detail: "the session ended")) }
        connection.socketIOReceived(allOrNothing: true) { s, now in s.receive(pollingBody: body, now: now) }
        if sio.closedByError {
            Self.answer(http, EngineIOHandshakeError(.badRequest, detail: "malformed payload: the session is closed"))
        } else {
            Self.answer(http, Array("ok".utf8), contentType: "text/html")
        }
    }

    /// An Engine.IO packet on the WebSocket opened with this sid: the probe (`2probe`, then `5`), then,
    /// once upgraded, the session's input.
    func fromWebSocket(_ ws: Connection, text: [UInt8]?, binary: [UInt8]?) {
        guard !ended, let sio = connection.socketIO else { return }
        if upgraded {
            guard webSocket === ws else { return Self.release(ws, reason: "the session was upgraded on another WebSocket") }
            if let text { connection.socketIOReceived { s, now in s.receive(text: text, now: now) } }
            if let binary { connection.socketIOReceived { s, now in s.receive(binaryFrame: binary, now: now) } }
            return
        }
        // One probing WebSocket at a time: a newer probe supersedes the older one, which is closed rather
        // than left open and unreferenced (nothing else would ever end it).
        if let old = webSocket, old !== ws { Self.release(old, reason: "superseded by another upgrade probe") }
        webSocket = ws
        // A probe is text: a binary frame before the upgrade is refused like an unknown packet type.
        let maxPayload = sio.session.configuration.maxPayload
        let decoded: Result<EngineIOPacket, EngineIOError> = (text ?? [UInt8(ascii: "b")]).withUnsafeBytes { raw in
            do throws(EngineIOError) { return .success(try EngineIOPacket.decode(text: raw, maxPayload: maxPayload)) } catch { return .failure(error) }
        }
        let packet: EngineIOPacket
        switch decoded {
        case .success(let p): packet = p
        case .failure(let error): return connection.performSocketIO([.close(.engineIOError(error))])
        }
        for action in sio.session.receiveOnProbe(packet, now: Int(owner.loop.now)) {
            switch action {
            case .sendOnProbe(let p): ws.loop.onLoop { ws.socketIOSendPacket(p) }
            case .upgraded: upgrade(to: ws)
            default: connection.performSocketIO([action])
            }
        }
        sio.syncTimer()
    }

    /// The WebSocket carries the session from now on: what waited for a poll goes to it first, in order.
    private func upgrade(to ws: Connection) {
        upgraded = true
        let queued = outbox.takeAll()
        ws.loop.onLoop { for p in queued { ws.socketIOSendPacket(p) } }
        if let held = heldPoll {
            heldPoll = nil
            Self.answer(held, EngineIOPayloadDecoder.encode([.noop]))
        }
    }

    /// Closes a WebSocket that no longer carries this session (on its own loop), unlinked first.
    private static func release(_ ws: Connection, reason: String) {
        ws.loop.onLoop {
            ws.loop.engineIO.links[ws.id] = nil
            ws.close(.policyViolation, reason: reason)
        }
    }

    /// The upgrading (or upgraded) WebSocket went away: before the upgrade polling goes on; after it the
    /// session ends (the client reconnects and recovers).
    func webSocketEnded(_ ws: Connection) {
        guard webSocket === ws else { return }
        webSocket = nil
        if upgraded && !ended { connection.close(.goingAway, reason: "the upgraded WebSocket closed") }
    }

    // MARK: - To the client

    /// One packet the connection wrote (through ``PollingTransport``).
    func deliver(_ packet: EngineIOPacket, frame: UnsafeRawBufferPointer) {
        if upgraded {
            guard let ws = webSocket else { return }
            let bytes = Bytes(Array(frame))
            ws.loop.onLoop { _ = ws.enqueueFrame(bytes) }
            return
        }
        switch outbox.enqueue(packet) {
        case .respond(let body):
            if let held = heldPoll {
                heldPoll = nil
                Self.answer(held, body)
            }
        case .queued:
            break
        case .overflow:
            // A client that does not poll fast enough: like the room protocol's slow consumer, closed (after
            // this flush) so that it reconnects and recovers.
            owner.metrics.slowConsumerCloses.add()
            let c = connection
            owner.loop.execute { c.fail(.slowConsumer, reason: "polling queue over --max-outbound-bytes") }
        }
    }

    /// The session ended (any reason): unregistered, a held GET answered 400 code 1 (so the client
    /// reconnects, and recovers), the WebSocket closed.
    func end() {
        guard !ended else { return }
        ended = true
        owner.engineIO.sessions[sid] = nil
        // No peer will ever answer the connection's close frame: release it now rather than after
        // --close-timeout (a drain waits for every connection). Deferred: this may run inside its flush.
        let c = connection
        owner.loop.execute { c.closeSocket() }
        if let held = heldPoll {
            heldPoll = nil
            Self.answer(held, EngineIOHandshakeError(.unknownSessionID, detail: "the session ended"))
        }
        if let ws = webSocket {
            webSocket = nil
            ws.loop.onLoop {
                ws.loop.engineIO.links[ws.id] = nil
                ws.close(.normalClosure, reason: "session ended")
            }
        }
    }

    // MARK: - HTTP answers (on the request's loop)

    static func answer(_ http: Connection, _ body: [UInt8], contentType: String = "text/plain; charset=UTF-8") {
        let response = HTTPResponse(status: .ok, headers: [HTTPHeader("Content-Type", contentType)], body: body)
        http.loop.onLoop { http.answerEngineIO(response) }
    }

    static func answer(_ http: Connection, _ error: EngineIOHandshakeError) {
        http.loop.onLoop {
            http.loop.engineIO.heldPolls[http.id] = nil
            http.rejectEngineIO(error)
        }
    }

    /// The connection of the held GET closed before its answer: the next GET is not a duplicate.
    func pollAbandoned(by http: Connection) {
        guard heldPoll === http else { return }
        heldPoll = nil
        outbox.pollAbandoned()
    }
}

/// The transport of a polling session's connection: nothing to read, and every frame written is handed to
/// the session as an Engine.IO packet (our own server frames, whole, unmasked: RFC 6455 §5.2). A close
/// frame ends the session.
final class PollingTransport: Transport, @unchecked Sendable {
    weak var session: SocketIOPollingSession?

    func read(fd: CInt, into buffer: UnsafeMutableRawBufferPointer) -> TransportResult { .wouldBlock }

    func write(fd: CInt, _ iov: UnsafeMutablePointer<iovec>, count: Int) -> TransportResult {
        var total = 0
        for i in 0..<count {
            let v = iov[i]
            total += v.iov_len
            guard let base = v.iov_base else { continue }
            let frame = UnsafeRawBufferPointer(start: base, count: v.iov_len)
            guard let (opcode, payload) = Self.payload(of: frame) else { continue }
            switch opcode {
            case 0x1:
                guard let packet = try? EngineIOPacket.decode(text: payload, maxPayload: Int.max) else { continue }
                session?.deliver(packet, frame: frame)
            case 0x2:
                session?.deliver(.binary(Array(payload)), frame: frame)
            case 0x8:
                session?.end()
            default:
                break  // pings and pongs have no meaning here
            }
        }
        return .done(total)
    }

    var hasBufferedInput: Bool { false }
    func shutdownWrite(fd: CInt) -> TransportResult { .done(0) }
    func release() {}

    /// Opcode and payload of one whole unmasked frame, nil when it is not one.
    static func payload(of frame: UnsafeRawBufferPointer) -> (UInt8, UnsafeRawBufferPointer)? {
        guard frame.count >= 2 else { return nil }
        var length = Int(frame[1] & 0x7F)
        var offset = 2
        if length == 126 {
            guard frame.count >= 4 else { return nil }
            length = Int(frame[2]) << 8 | Int(frame[3])
            offset = 4
        } else if length == 127 {
            guard frame.count >= 10 else { return nil }
            length = (2..<10).reduce(0) { $0 << 8 | Int(frame[$1]) }
            offset = 10
        }
        guard frame[1] & 0x80 == 0, offset + length == frame.count else { return nil }
        return (frame[0] & 0x0F, UnsafeRawBufferPointer(rebasing: frame[offset...]))
    }
}

/// A polling POST whose body is still arriving.
final class EngineIOPendingPost {
    let sid: String
    let length: Int
    var body: [UInt8] = []
    init(sid: String, length: Int) {
        self.sid = sid
        self.length = length
        body.reserveCapacity(length)
    }
}

/// A loop's Engine.IO state (loop-confined): its polling sessions by sid, WebSockets linked to a polling
/// session (probing or upgraded) by connection id, upgrades between routing and the 101, POST bodies in flight.
final class EngineIOLoopState {
    var sessions: [String: SocketIOPollingSession] = [:]
    var links: [UInt64: String] = [:]
    var pendingLinks: [UInt64: String] = [:]
    var posts: [UInt64: EngineIOPendingPost] = [:]
    /// HTTP connections with a GET in flight (held or being answered) → the sid it polls.
    var heldPolls: [UInt64: String] = [:]
}
