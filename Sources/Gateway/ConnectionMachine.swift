import Protocol

/// The life of one client connection as a value with no I/O: its phase, the close handshake (RFC 6455 §7),
/// every deadline (handshake, authentication, ping and pong, idle, token expiry, close) and the decision what
/// to do with an outbound frame under pressure. Each event returns what to do; `Connection` does the I/O.
///
/// Phases: `http` (reading the upgrade request) → `authenticating` (the auth backend decides before the 101)
/// → `open` → `closing` (close frame sent or received, waiting for the rest) → `closed`.
///
/// Time is the loop's monotonic clock in milliseconds. The machine keeps one deadline (``deadline``, 0 = none):
/// the earliest of the phase's deadline and the authentication deadline. The owner arms its timer when
/// ``deadline`` changes and calls ``timerFired(now:)`` when it passes.
struct ConnectionMachine {
    enum Phase: UInt8 { case http, authenticating, open, closing, closed }

    /// What an authentication deadline means when it passes (one at a time).
    enum AuthDeadline: UInt8 {
        case none
        /// Upgraded without a token: `auth` is due (close 4001).
        case authTimeout
        /// Time to tell the client its token expires soon (`token_expiring`).
        case expiryNotice
        /// The token's `exp` (plus leeway) passed: the session is suspended until a fresh `auth`.
        case expiry
        /// The grace after expiry ended without a fresh token (close 4003).
        case graceEnd
    }

    /// What the owner must do when the deadline passes (``timerFired(now:)``).
    enum TimerAction: Equatable {
        /// The handshake (or the auth backend's answer for it) took too long: reset the socket.
        case handshakeTimeout
        /// No data frame within `--idle-timeout`: close cleanly (1001).
        case idle
        /// No frame at all after a ping within `--pong-timeout`: fail (1001).
        case pongTimeout
        /// Send a ping now.
        case sendPing
        /// An authentication deadline passed.
        case auth(AuthDeadline)
        /// The peer never finished the close: reset the socket.
        case closeTimeout
    }

    /// How a close is started.
    enum CloseMode {
        /// Fail the connection (§7.1.7): close frame, then FIN at once, then a short wait for the peer's EOF.
        case fail
        /// Clean server close (drain, reaping): close frame, then wait up to `--close-timeout` for the peer's.
        case clean
    }

    /// What starting a close requires of the owner.
    enum CloseAction: Equatable {
        /// Queue a close frame with `code` and `reason`; leave every room. `shutdownAfterFlush`: FIN follows
        /// the queued bytes. `leftOpen`: the connection was open until now (count it, log it).
        case sendClose(code: CloseCode, reason: String, shutdownAfterFlush: Bool, leftOpen: Bool)
        /// Already closing: only make sure FIN follows the queued bytes.
        case shutdownAfterFlush
        /// Not upgraded yet: close the socket now.
        case closeSocket
        /// Nothing to do (already closing or closed).
        case none
    }

    /// What the peer's close frame requires (§5.5.1, §7.1.1).
    struct PeerCloseAction: Equatable {
        /// The close frame to answer with (the peer's code echoed), or nil when ours was already sent.
        var reply: CloseCode??
        /// The connection was open until now.
        var leftOpen: Bool
    }

    /// What to do with an outbound frame (uWebSockets' SUCCESS / BACKPRESSURE / DROPPED).
    enum OutboundVerdict: Equatable {
        case queue
        /// A droppable frame while over the high-water mark: drop it.
        case shed
        /// Over the mark for longer than the grace, or past twice the mark: close as a slow consumer (4004).
        case slowConsumer
    }

    /// Shared by every connection of a kind on a loop (one pointer per connection).
    private(set) var limits: ConnectionLimits
    private(set) var phase = Phase.http
    /// The earliest pending deadline (ms), or 0: the phase's, or the authentication deadline while open.
    var deadline: UInt64 {
        guard authDeadline != .none && phase == .open else { return phaseDeadline }
        return phaseDeadline == 0 ? authDeadlineAt : min(phaseDeadline, authDeadlineAt)
    }
    private var phaseDeadline: UInt64 = 0
    private(set) var authDeadline = AuthDeadline.none
    private var authDeadlineAt: UInt64 = 0

    // Liveness: any inbound frame counts (docs/protocol.md).
    private(set) var lastFrameAt: UInt64 = 0
    private(set) var lastDataAt: UInt64 = 0
    private var pingSentAt: UInt64 = 0
    private var nextPingAt: UInt64 = 0
    private(set) var awaitingPong = false
    private var frameTokens: Float = 0
    private var frameTokensAt: UInt64 = 0
    /// When the outbound queue first went over the high-water mark (0 = under it).
    private var overMarkSince: UInt64 = 0

    private(set) var closeSent = false
    /// Set once the connection failed or the peer's close arrived: later input is discarded (a reader must
    /// not be fed after an error or a close).
    private(set) var stopReading = false
    /// The close code for logs and metrics (1006 when the socket ended without a close frame).
    private(set) var closeCode: UInt16?
    private(set) var closeReason = ""

    /// A connection accepted at `now`: the handshake deadline runs from accept, not from the last byte (slowloris).
    init(limits: ConnectionLimits, now: UInt64) {
        self.limits = limits
        phaseDeadline = now + UInt64(limits.handshakeTimeoutMs)
    }

    // MARK: - Phases

    /// The upgrade waits for the auth backend until `until` (the 101 is not sent yet).
    mutating func beginAuthentication(until: UInt64) {
        guard phase == .http else { return }
        phase = .authenticating
        phaseDeadline = until
    }

    /// The 101 was queued: the WebSocket is open, under `limits` (the personality's: echo has no frame-rate limit).
    mutating func opened(now: UInt64, limits: ConnectionLimits) {
        guard phase == .http || phase == .authenticating else { return }
        self.limits = limits
        phase = .open
        lastFrameAt = now
        lastDataAt = now
        nextPingAt = now + UInt64(limits.pingIntervalMs)
        frameTokens = Float(limits.maxFrameRate) * 2
        frameTokensAt = now
        recomputeOpen()
    }

    /// The handshake was answered with an error status: wait briefly for the response to leave, then reset.
    mutating func rejected(now: UInt64) {
        guard phase == .http || phase == .authenticating else { return }
        phase = .closing
        stopReading = true
        authDeadline = .none
        phaseDeadline = now + UInt64(limits.lingerMs)
    }

    /// Sets (or clears, with `.none`) the authentication deadline.
    mutating func setAuthDeadline(_ kind: AuthDeadline, at: UInt64) {
        authDeadline = kind
        authDeadlineAt = kind == .none ? 0 : at
    }

    // MARK: - Input

    /// One inbound frame (data, continuation or control) arrived. Returns false when it breaks the frame-rate
    /// limit (the owner fails the connection with 1008).
    mutating func frameArrived(now: UInt64, isData: Bool) -> Bool {
        lastFrameAt = now
        if isData { lastDataAt = now }
        guard limits.maxFrameRate > 0 else { return true }
        let rate = Float(limits.maxFrameRate)
        if now > frameTokensAt {
            frameTokens = min(rate * 2, frameTokens + Float(now - frameTokensAt) * rate / 1000)
            frameTokensAt = now
        }
        guard frameTokens >= 1 else { return false }
        frameTokens -= 1
        return true
    }

    /// The peer's close frame (`code` nil when it carried none). We answer with its code unless our close
    /// already went out, then FIN: the server closes TCP first (§7.1.1).
    mutating func peerClosed(code: CloseCode?, now: UInt64) -> PeerCloseAction {
        stopReading = true
        if closeCode == nil { closeCode = code?.rawValue ?? 1005 }
        var action = PeerCloseAction(reply: nil, leftOpen: false)
        if !closeSent {
            closeSent = true
            action.reply = .some(code)
        }
        action.leftOpen = enterClosing(now: now, timeoutMs: limits.lingerMs)
        return action
    }

    // MARK: - Closing

    /// Starts a close with `code` (RFC 6455 §7.1.7 for `.fail`, §7.1.2 for `.clean`).
    mutating func startClose(_ code: CloseCode, reason: String, mode: CloseMode, now: UInt64) -> CloseAction {
        if mode == .fail { stopReading = true }
        switch phase {
        case .open:
            closeCode = code.rawValue
            closeReason = reason
            let firstClose = !closeSent
            closeSent = true
            let leftOpen = enterClosing(now: now, timeoutMs: mode == .fail ? limits.lingerMs : limits.closeTimeoutMs)
            guard firstClose else { return mode == .fail ? .shutdownAfterFlush : .none }
            return .sendClose(code: code, reason: reason, shutdownAfterFlush: mode == .fail, leftOpen: leftOpen)
        case .closing:
            return mode == .fail ? .shutdownAfterFlush : .none
        case .http, .authenticating:
            return mode == .clean ? .closeSocket : .none
        case .closed:
            return .none
        }
    }

    /// The socket ended (EOF, error, reset or our close). Returns true when it was still open (count it, log
    /// it, with ``closeCode`` 1006 when no close frame was seen).
    mutating func socketClosed() -> Bool {
        let wasOpen = phase == .open
        if wasOpen && closeCode == nil { closeCode = 1006 }
        phase = .closed
        phaseDeadline = 0
        authDeadline = .none
        return wasOpen
    }

    /// The transport ended without a close frame while open (EOF, read or write error).
    mutating func transportEnded() {
        if phase == .open && closeCode == nil { closeCode = 1006 }
    }

    private mutating func enterClosing(now: UInt64, timeoutMs: Int) -> Bool {
        guard phase != .closing && phase != .closed else { return false }
        let wasOpen = phase == .open
        phase = .closing
        authDeadline = .none
        phaseDeadline = now + UInt64(timeoutMs)
        return wasOpen
    }

    // MARK: - Deadlines

    /// The deadline passed: the one thing due now, or nil (then re-arm ``deadline``). Call again until nil:
    /// several things may be due at once. `idle` and `pongTimeout` are answered with a close, which ends the
    /// open phase; the others change the state themselves.
    mutating func timerFired(now: UInt64) -> TimerAction? {
        switch phase {
        case .http, .authenticating:
            guard phaseDeadline != 0, now >= phaseDeadline else { return nil }
            phaseDeadline = 0
            return .handshakeTimeout
        case .closing:
            guard phaseDeadline != 0, now >= phaseDeadline else { return nil }
            phaseDeadline = 0
            return .closeTimeout
        case .closed:
            return nil
        case .open:
            if authDeadline != .none && now >= authDeadlineAt {
                let due = authDeadline
                authDeadline = .none
                recomputeOpen()
                return .auth(due)
            }
            if limits.idleTimeoutMs > 0 && now >= lastDataAt + UInt64(limits.idleTimeoutMs) {
                return .idle
            }
            if awaitingPong && now >= pingSentAt + UInt64(limits.pongTimeoutMs) {
                if lastFrameAt < pingSentAt { return .pongTimeout }
                awaitingPong = false
            }
            if !awaitingPong && now >= nextPingAt {
                awaitingPong = true
                pingSentAt = now
                nextPingAt = now + UInt64(limits.pingIntervalMs)
                recomputeOpen()
                return .sendPing
            }
            recomputeOpen()
            return nil
        }
    }

    private mutating func recomputeOpen() {
        var next = awaitingPong ? pingSentAt + UInt64(limits.pongTimeoutMs) : nextPingAt
        if limits.idleTimeoutMs > 0 { next = min(next, lastDataAt + UInt64(limits.idleTimeoutMs)) }
        phaseDeadline = next
    }

    // MARK: - Outbound pressure

    /// Decides on one outbound frame of `frameBytes` with `queuedBytes` already queued. An empty queue takes
    /// any frame (a client with nothing pending is not slow, however large one message is). Over the mark,
    /// droppable frames are shed; reliable ones are queued for at most `--slow-consumer-grace` and never past
    /// twice the mark. Room messages are never dropped silently: the client is closed and resumes.
    mutating func outbound(queuedBytes: Int, frameBytes: Int, droppable: Bool, now: @autoclosure () -> UInt64) -> OutboundVerdict {
        let mark = limits.maxOutboundBytes
        guard queuedBytes > 0 && queuedBytes + frameBytes > mark else {
            overMarkSince = 0
            return .queue
        }
        if droppable { return .shed }
        let now = now()
        if overMarkSince == 0 { overMarkSince = now }
        if queuedBytes + frameBytes > 2 * mark || now >= overMarkSince + UInt64(limits.slowConsumerGraceMs) {
            return .slowConsumer
        }
        return .queue
    }
}

/// The limits a connection runs under (from `Config`; milliseconds and bytes). Immutable, shared by every
/// connection of one kind on a loop.
final class ConnectionLimits: Sendable {
    let handshakeTimeoutMs: Int
    let pingIntervalMs: Int
    let pongTimeoutMs: Int
    /// 0 = no idle limit.
    let idleTimeoutMs: Int
    let closeTimeoutMs: Int
    /// Inbound frames per second, burst two seconds' worth; 0 = unlimited.
    let maxFrameRate: Int
    /// Outbound high-water mark (`--max-outbound-bytes`).
    let maxOutboundBytes: Int
    let slowConsumerGraceMs: Int

    /// How long a failed or answered close waits for the peer's EOF (§7.1.1: the server closes TCP first,
    /// so this only bounds a peer that never reads our FIN).
    var lingerMs: Int { min(closeTimeoutMs, 2000) }

    init(
        handshakeTimeoutMs: Int = 5000, pingIntervalMs: Int = 25_000, pongTimeoutMs: Int = 10_000, idleTimeoutMs: Int = 0,
        closeTimeoutMs: Int = 5000, maxFrameRate: Int = 0, maxOutboundBytes: Int = 1 << 20, slowConsumerGraceMs: Int = 1000
    ) {
        self.handshakeTimeoutMs = handshakeTimeoutMs
        self.pingIntervalMs = pingIntervalMs
        self.pongTimeoutMs = pongTimeoutMs
        self.idleTimeoutMs = idleTimeoutMs
        self.closeTimeoutMs = closeTimeoutMs
        self.maxFrameRate = maxFrameRate
        self.maxOutboundBytes = maxOutboundBytes
        self.slowConsumerGraceMs = slowConsumerGraceMs
    }

    /// The limits `config` sets; `frameRateLimited` false for the echo path (conformance runs send floods);
    /// `pingIntervalMs` replaces `--ping-interval` (Socket.IO has its own heartbeat).
    convenience init(_ config: Config, frameRateLimited: Bool, pingIntervalMs: Int? = nil) {
        self.init(
            handshakeTimeoutMs: config.handshakeTimeoutMs, pingIntervalMs: pingIntervalMs ?? config.pingIntervalMs, pongTimeoutMs: config.pongTimeoutMs,
            idleTimeoutMs: config.idleTimeoutMs, closeTimeoutMs: config.closeTimeoutMs,
            maxFrameRate: frameRateLimited ? config.maxFrameRate : 0, maxOutboundBytes: config.maxOutboundBytes,
            slowConsumerGraceMs: config.slowConsumerGraceMs)
    }
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
    /// The client was closed as a slow consumer (4004); the frame was not queued.
    case overLimit
    /// The connection is not open.
    case closed
}
