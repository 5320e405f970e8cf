import Foundation
import Glibc
import Protocol
import Runtime

/// The reference Switchboard client: what docs/protocol.md ("A well-behaved client") asks of a client,
/// and nothing more.
///
/// - Connects to one address (typically the load balancer) and keeps reconnecting until `close()`:
///   exponential backoff with full jitter (a random delay in `0...min(cap, base * 2^attempt)`), reset once
///   a connection is upgraded and a join is answered.
/// - Honours `reconnect {after_ms}`: the next connect waits exactly `after_ms` (the server already jittered
///   it), then resumes the usual backoff if that connect fails.
/// - Rejoins every room it joined with `since` = the last offset it received in that room.
/// - Drops any `message` at or below a room's last offset (the resume seam: a replayed or duplicated message
///   is never delivered twice) and reports `joined.recovered` through `onJoined`.
/// - Does not reconnect after a close that retrying cannot fix (1002, 1003, 1007, 1008, 1009, 4001, 4002, and
///   4003 without a token provider); a slow-consumer close (4004) reconnects and resumes.
/// - With a `tokenProvider`: authenticates every connection with `auth {token}` and rejoins once `hello`
///   confirms it; asks the provider again on `token_expiring`, on `error token_expired` and after a 4003
///   close, so an expiring session renews itself instead of ending.
///
/// Runs on a `ClientLoop`; thousands of clients can share one loop. Everything here, callbacks included,
/// happens on the loop thread: create, `join`, `publish`, `close` there (for example inside
/// `ClientLoop.run`).
public final class SwitchboardClient: @unchecked Sendable {
    /// Where and how to connect.
    public struct Options: Sendable {
        /// IPv4 address (dotted quad) and port of the gateway or load balancer.
        public var host: String
        public var port: Int
        /// The room protocol path.
        public var path: String
        /// Backoff: ceiling of the first retry's random delay, doubling per failed attempt, up to `backoffCapMs`.
        public var backoffBaseMs: Int
        public var backoffCapMs: Int
        /// Connect plus upgrade must complete within this time, or the attempt counts as failed.
        public var connectTimeoutMs: Int
        /// Further gateway addresses (IPv4, port) when there is no load balancer: after a connection ends,
        /// the next attempt goes to one of the addresses other than the last one, at random.
        public var alternatives: [Alternative] = []

        /// Another address to try (see `alternatives`).
        public struct Alternative: Sendable {
            public var host: String
            public var port: Int
            public init(host: String = "127.0.0.1", port: Int) { self.host = host; self.port = port }
        }

        /// Defaults: path `/ws`, backoff base 250 ms, cap 30 s, connect timeout 10 s.
        public init(
            host: String = "127.0.0.1", port: Int, path: String = "/ws", backoffBaseMs: Int = 250,
            backoffCapMs: Int = 30_000, connectTimeoutMs: Int = 10_000
        ) {
            self.host = host
            self.port = port
            self.path = path
            self.backoffBaseMs = backoffBaseMs
            self.backoffCapMs = backoffCapMs
            self.connectTimeoutMs = connectTimeoutMs
        }
    }

    /// Connection state as seen by the owner.
    public enum State: Sendable, Equatable {
        /// Not started, or waiting for the next attempt.
        case disconnected
        case connecting
        /// Upgraded; joins have been sent.
        case open
        /// `close()` was called, or the server closed with a code retrying cannot fix.
        case stopped
    }

    public let options: Options
    private let loop: ClientLoop
    private let addresses: [Endpoint]
    private var current = 0
    private var connection: ClientConnection?
    private var retryTimer: ClosureTimer?
    private var connectTimer: ClosureTimer?
    private var attempt = 0
    private var afterMs: Int?
    /// Rooms in join order, and the last offset received (or the `joined` offset) per room.
    private var rooms: [String] = []
    private var lastOffsets: [String: String] = [:]
    /// With a token provider: the connection's `auth` is not yet confirmed by `hello`.
    private var awaitingHello = false
    /// Publishes with an `id` not yet acked on this connection: the frame and the attempts so far.
    private var pendingPublishes: [Int: (frame: String, attempts: Int)] = [:]

    /// Current state.
    public private(set) var state = State.disconnected
    /// Connections upgraded so far (the first one included).
    public private(set) var opens = 0
    /// Times a `reconnect {after_ms}` was honoured.
    public private(set) var reconnectsRequested = 0
    /// Messages dropped because their offset was at or below the room's last offset.
    public private(set) var duplicatesDropped = 0
    /// Why the last connection ended.
    public private(set) var lastEnd: ConnectionEnd?

    /// A `message` in order, never one already delivered: room, offset, data (compact JSON).
    public var onMessage: ((_ room: String, _ offset: String, _ data: JSONFragment) -> Void)?
    /// A `joined` answer (first join and every rejoin): room, the room's latest offset, `recovered`.
    /// `recovered == false` on a rejoin means messages may be missing: refetch the room's state.
    public var onJoined: ((_ room: String, _ offset: String, _ recovered: Bool) -> Void)?
    /// A connection was upgraded.
    public var onOpen: (() -> Void)?
    /// A connection ended; the client reconnects by itself unless `state == .stopped`.
    public var onDisconnect: ((ConnectionEnd) -> Void)?
    /// Every other server message (`hello`, `ack`, `presence`, `error`, `left`).
    public var onOther: ((ServerMessage) -> Void)?

    /// Why the client asks for a token.
    public enum TokenRequest: Sendable, Equatable {
        /// A new connection is open (the first, or a reconnect, e.g. after a 4003 close).
        case connect
        /// The server said the token expires soon (`token_expiring`) or has expired (`error token_expired`).
        case renew
    }

    /// The application's token source: called on the loop thread; call `deliver` (from any thread) with a
    /// token, or nil to give up (the connection continues without one and the server decides). Unset = the
    /// client sends no token (the gateway then needs none, or gets it from a cookie or header elsewhere).
    public var tokenProvider: ((_ reason: TokenRequest, _ deliver: @escaping @Sendable (String?) -> Void) -> Void)?
    /// Tokens asked of `tokenProvider` so far.
    public private(set) var tokensRequested = 0

    /// Prepares a client; nothing happens until `start()`. Errors: `SyscallError` for a bad host.
    public init(loop: ClientLoop, options: Options) throws(SyscallError) {
        self.loop = loop
        self.options = options
        var list = [try Endpoint(host: options.host, port: options.port, path: options.path)]
        for a in options.alternatives { list.append(try Endpoint(host: a.host, port: a.port, path: options.path)) }
        addresses = list
    }

    /// Resets a connection still open: at once on the loop thread, else on the loop's next turn (the
    /// connection holds this client `weak`, so nothing reports to it meanwhile). Safe from any thread.
    deinit {
        guard let c = connection else { return }
        if loop.loop.inLoop { c.reset() } else { loop.run { c.reset() } }
    }

    /// The last offset this client holds for `room` (what it would pass as `since`), if any.
    public func lastOffset(of room: String) -> String? { lastOffsets[room] }

    /// Starts connecting (loop thread).
    public func start() {
        guard state == .disconnected, connection == nil, retryTimer == nil else { return }
        connect()
    }

    /// Joins `room` now if connected, and on every reconnect (with `since`). Loop thread.
    public func join(_ room: String) {
        guard !rooms.contains(room) else { return }
        rooms.append(room)
        if state == .open { sendJoin(room) }
    }

    /// Leaves `room` and forgets its offset. Loop thread.
    public func leave(_ room: String) {
        rooms.removeAll { $0 == room }
        lastOffsets[room] = nil
        if state == .open { send("{\"op\":\"leave\",\"room\":\(jsonString(room))}") }
    }

    /// Publishes `data` (a JSON value) to `room`; with `id` the server answers `ack` (see `onOther`).
    /// Returns false when not connected (nothing is queued across reconnects). Loop thread.
    ///
    /// With an `id`, a publish answered `unavailable` (never stored) or `unknown` (maybe stored) is sent
    /// again with the same `id` on the same connection, up to 4 more times with backoff: the server stores
    /// one `id` at most once per session, so the retry cannot duplicate. After a reconnect it is not
    /// retried (a new session); the last error reaches `onOther`.
    @discardableResult
    public func publish(room: String, data: JSONFragment, id: Int? = nil) -> Bool {
        guard state == .open else { return false }
        let frame = "{\"op\":\"publish\",\"room\":\(jsonString(room)),\"data\":\(data.description)\(id.map { ",\"id\":\($0)" } ?? "")}"
        if let id { pendingPublishes[id] = (frame, 1) }
        send(frame)
        return true
    }

    /// Retries a publish refused as `unavailable` or `unknown` (see `publish`); false when it gave up.
    private func retryPublish(_ m: ServerMessage) -> Bool {
        guard m.code == "unavailable" || m.code == "unknown", let idText = m.id?.description, let id = Int(idText),
            let (frame, attempts) = pendingPublishes[id], attempts < 5, let c = connection
        else { return false }
        pendingPublishes[id] = (frame, attempts + 1)
        let ceiling = min(options.backoffCapMs, options.backoffBaseMs << min(attempts, 20))
        _ = loop.loop.schedule(afterMilliseconds: Int.random(in: 0...max(1, ceiling))) { [weak self, weak c] in
            guard let self, let c, c === self.connection, self.pendingPublishes[id] != nil else { return }
            self.send(frame)
        }
        return true
    }

    /// Closes for good (a normal close, no reconnect). Loop thread.
    public func close() {
        state = .stopped
        retryTimer?.cancel()
        retryTimer = nil
        connectTimer?.cancel()
        connectTimer = nil
        connection?.closeNormally()
        connection = nil
    }

    /// Kills the current connection without a close handshake, as a network failure would; the client
    /// then reconnects as usual (for tests). Loop thread.
    public func dropConnection() {
        guard let c = connection else { return }
        c.reset()
        connectionEnded(.eof)
    }

    // MARK: - Connecting

    private func connect() {
        retryTimer = nil
        state = .connecting
        let c = ClientConnection(loop: loop, delegate: self)
        connection = c
        connectTimer = loop.loop.schedule(afterMilliseconds: options.connectTimeoutMs) { [weak c] in c?.timeOut() }
        c.connect(addresses[current])
    }

    private func opened() {
        connectTimer?.cancel()
        connectTimer = nil
        state = .open
        opens += 1
        if tokenProvider != nil {
            awaitingHello = true  // rooms are rejoined once the server confirms the token with `hello`
            requestToken(.connect)
        } else {
            for room in rooms { sendJoin(room) }
        }
        onOpen?()
    }

    /// Asks the provider for a token and sends it as `auth` on the connection that is current then.
    private func requestToken(_ reason: TokenRequest) {
        guard let provider = tokenProvider, let c = connection else { return }
        tokensRequested += 1
        let target = WeakClient(self)
        let connectionID = ObjectIdentifier(c)
        let loop = self.loop
        provider(reason) { token in
            loop.run {
                // Only for the connection that asked: a token for a connection since replaced is dropped.
                guard let token, let client = target.value, let now = client.connection, ObjectIdentifier(now) == connectionID,
                    client.state == .open
                else { return }
                client.send("{\"op\":\"auth\",\"token\":\(client.jsonString(token))}")
            }
        }
    }

    private func connectionEnded(_ end: ConnectionEnd) {
        connectTimer?.cancel()
        connectTimer = nil
        connection = nil
        pendingPublishes = [:]
        lastEnd = end
        guard state != .stopped else { return }
        let final: Set<UInt16> = tokenProvider == nil ? [1002, 1003, 1007, 1008, 1009, 4001, 4002, 4003] : [1002, 1003, 1007, 1008, 1009, 4001, 4002]
        if case .serverClosed(let code?) = end, final.contains(code) {
            state = .stopped
            onDisconnect?(end)
            return
        }
        state = .disconnected
        let delay: Int
        if let ms = afterMs {
            afterMs = nil
            reconnectsRequested += 1
            delay = ms
        } else {
            let ceiling = min(options.backoffCapMs, options.backoffBaseMs << min(attempt, 20))
            delay = Int.random(in: 0...max(0, ceiling))
            attempt += 1
        }
        if addresses.count > 1 { current = (current + Int.random(in: 1..<addresses.count)) % addresses.count }
        onDisconnect?(end)
        guard state == .disconnected else { return }
        retryTimer = loop.loop.schedule(afterMilliseconds: delay) { [weak self] in self?.connect() }
    }

    // MARK: - Messages

    private func sendJoin(_ room: String) {
        if let since = lastOffsets[room] {
            send("{\"op\":\"join\",\"room\":\(jsonString(room)),\"since\":\(jsonString(since))}")
        } else {
            send("{\"op\":\"join\",\"room\":\(jsonString(room))}")
        }
    }

    private func send(_ text: String) { connection?.sendText(Array(text.utf8)) }

    private func received(_ text: UnsafeRawBufferPointer) {
        guard let m = Envelope.decodeServer(text) else { return }
        switch m.op {
        case "message":
            guard let room = m.room, let offset = m.offset, rooms.contains(room) else { return }
            if let last = lastOffsets[room], !Self.isAfter(offset, last) {
                duplicatesDropped += 1
                return
            }
            lastOffsets[room] = offset
            onMessage?(room, offset, m.data ?? .null)
        case "joined":
            guard let room = m.room, let offset = m.offset else { return }
            let recovered = m.recovered ?? false
            // Without a usable `since` nothing is replayed: continue from the room's latest offset.
            // With `recovered`, the replay follows and advances the offset message by message.
            if lastOffsets[room] == nil || !recovered { lastOffsets[room] = offset }
            attempt = 0
            onJoined?(room, offset, recovered)
        case "reconnect":
            afterMs = max(0, m.afterMs ?? 0)
        case "hello":
            if awaitingHello {
                awaitingHello = false
                for room in rooms { sendJoin(room) }
            }
            onOther?(m)
        case "token_expiring":
            requestToken(.renew)
            onOther?(m)
        case "error" where m.code == "token_expired":
            requestToken(.renew)
            onOther?(m)
        case "error" where retryPublish(m):
            return
        case "ack":
            if let idText = m.id?.description, let id = Int(idText) { pendingPublishes[id] = nil }
            onOther?(m)
        default:
            onOther?(m)
        }
    }

    /// Offsets are `{epoch}:{ms}-{seq}`; within one epoch they order by (ms, seq). An offset from another
    /// epoch counts as after (the history was reset; `joined.recovered == false` said so).
    static func isAfter(_ a: String, _ b: String) -> Bool {
        guard let pa = parse(a), let pb = parse(b) else { return a != b }
        if pa.epoch != pb.epoch { return true }
        return pa.ms != pb.ms ? pa.ms > pb.ms : pa.seq > pb.seq
    }

    private static func parse(_ s: String) -> (epoch: Substring, ms: UInt64, seq: UInt64)? {
        guard let colon = s.lastIndex(of: ":") else { return nil }
        let id = s[s.index(after: colon)...]
        guard let dash = id.firstIndex(of: "-"), let ms = UInt64(id[..<dash]), let seq = UInt64(id[id.index(after: dash)...]) else { return nil }
        return (s[..<colon], ms, seq)
    }

    private func jsonString(_ s: String) -> String {
        var out = "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case _ where u.value < 0x20: out += String(format: "\\u%04x", u.value)
            default: out.unicodeScalars.append(u)
            }
        }
        return out + "\""
    }
}

extension SwitchboardClient: ClientConnectionDelegate {
    package func clientOpened(_ client: ClientConnection) {
        guard client === connection else { return }
        opened()
    }

    package func clientText(_ client: ClientConnection, _ text: UnsafeRawBufferPointer) {
        guard client === connection else { return }
        received(text)
    }

    package func clientClosed(_ client: ClientConnection, _ cause: ConnectionEnd) {
        guard client === connection else { return }
        connectionEnded(cause)
    }
}

/// A weak reference a `@Sendable` closure may carry (the token provider's callback may run on any thread).
private final class WeakClient: @unchecked Sendable {
    weak var value: SwitchboardClient?
    init(_ value: SwitchboardClient) { self.value = value }
}
