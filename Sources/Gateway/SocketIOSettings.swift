import Protocol

/// The Socket.IO part of ``Config`` (flags in ``Config/socketIOOptions``; docs/socketio.md). Durations in
/// milliseconds, sizes in bytes.
public struct SocketIOSettings: Sendable {
    /// `--socketio-path`: the Engine.IO endpoint, e.g. `/socket.io/` (socket.io-client's default path);
    /// nil = Socket.IO off (the default). Requests match with and without the trailing slash.
    public var path: String? = nil
    /// `--socketio-namespaces`: namespaces clients may connect to (default `/`); any other gets CONNECT_ERROR.
    public var namespaces: Set<String> = ["/"]
    /// `--socketio-join-event`: the event that joins a room, `[room]` or `[room, since]` (default `join`).
    public var joinEvent = "join"
    /// `--socketio-leave-event`: the event that leaves a room, `[room]` (default `leave`).
    public var leaveEvent = "leave"
    /// `--socketio-publish-event`: the event that publishes, `[room, data]`, acked with the offset (default `publish`).
    public var publishEvent = "publish"
    /// `--socketio-message-event`: the event a room message arrives as (`[room, data, offset]`).
    public var messageEvent = "message"
    /// `--socketio-ping-interval`: Engine.IO server pings (default 25 s, the reference default).
    public var pingIntervalMs = 25_000
    /// `--socketio-ping-timeout`: time to answer a ping before the session is reaped (default 20 s).
    public var pingTimeoutMs = 20_000
    /// `--socketio-max-payload`: largest Engine.IO packet or polling body (default 1,000,000 B, the reference default).
    public var maxPayload = 1_000_000
    /// `--socketio-connect-timeout`: time after the open packet to connect a namespace (default 45 s).
    public var connectTimeoutMs = 45_000
    /// `--socketio-recovery-window`: how long a session's rooms and offsets are kept for connection-state
    /// recovery after it ends, on any node (default 2 m, the reference `maxDisconnectionDuration`; 0 = off).
    public var recoveryWindowMs = 120_000

    /// The default: off.
    public init() {}

    /// Whether `path` (an HTTP request path) is the Socket.IO endpoint.
    func matches(_ requestPath: String) -> Bool {
        guard let path else { return false }
        return requestPath == path || requestPath + "/" == path || requestPath == path + "/"
    }

    /// The sans-I/O session's settings.
    var sessionConfiguration: SocketIOSessionConfiguration {
        SocketIOSessionConfiguration(
            namespaces: namespaces, pingInterval: pingIntervalMs, pingTimeout: pingTimeoutMs, maxPayload: maxPayload,
            joinEvent: joinEvent, leaveEvent: leaveEvent, publishEvent: publishEvent, messageEvent: messageEvent,
            connectTimeout: connectTimeoutMs)
    }
}

extension Config {
    /// The Socket.IO flags, appended to the flag table (`--help` order).
    static let socketIOOptions: [Option] = [
        Option(
            name: "socketio-path", kind: .string, help: "Engine.IO v4 / Socket.IO v5 endpoint, e.g. /socket.io/ (unset = off)",
            apply: { c, v throws(Invalid) in
                guard !v.isEmpty else { c.socketIO.path = nil; return }
                guard v.hasPrefix("/"), !v.contains(" "), !v.contains("?") else {
                    throw Invalid(description: "--socketio-path: expected a path starting with '/', got '\(v)'")
                }
                c.socketIO.path = v
            }, current: { $0.socketIO.path ?? "" }),
        Option(
            name: "socketio-namespaces", kind: .list, help: "comma list of Socket.IO namespaces clients may connect to",
            apply: { c, v throws(Invalid) in
                let items = listItems(v)
                guard !items.isEmpty, items.allSatisfy({ $0.hasPrefix("/") && $0.utf8.count <= 256 }) else {
                    throw Invalid(description: "--socketio-namespaces: expected namespaces starting with '/', got '\(v)'")
                }
                c.socketIO.namespaces = Set(items)
            }, current: { $0.socketIO.namespaces.sorted().joined(separator: ",") }),
        eventOption("join", \.joinEvent), eventOption("leave", \.leaveEvent), eventOption("publish", \.publishEvent),
        eventOption("message", \.messageEvent),
        durationOption("ping-interval", "Engine.IO: time between server pings", \.pingIntervalMs),
        durationOption("ping-timeout", "Engine.IO: time a client has to answer a ping before it is reaped", \.pingTimeoutMs),
        Option(
            name: "socketio-max-payload", kind: .size, help: "Engine.IO: largest packet or polling body accepted (announced as maxPayload)",
            apply: { c, v throws(Invalid) in
                guard let b = parseSize(v), b >= 1, b <= 64 << 20 else {
                    throw Invalid(description: "--socketio-max-payload: expected a size from 1B to 64MiB, got '\(v)'")
                }
                c.socketIO.maxPayload = b
            },
            current: { "\($0.socketIO.maxPayload)B" }),
        durationOption("connect-timeout", "Socket.IO: time after the open packet to connect a namespace", \.connectTimeoutMs),
        durationOption(
            "recovery-window", "Socket.IO connection-state recovery: how long an ended session's rooms are kept for a reconnect to any node (0 = off)",
            \.recoveryWindowMs, allowZero: true)
    ]

    /// `--socketio-<name>`: a duration up to a day (milliseconds in `field`).
    private static func durationOption(
        _ name: String, _ help: String, _ field: WritableKeyPath<SocketIOSettings, Int> & Sendable,
        allowZero: Bool = false
    ) -> Option {
        let flag = "socketio-\(name)"
        return Option(
            name: flag, kind: .duration, help: help,
            apply: { c, v throws(Invalid) in c.socketIO[keyPath: field] = try duration(v, flag, in: (allowZero ? 0 : 1)...86_400_000) },
            current: { "\($0.socketIO[keyPath: field])ms" })
    }

    private static func eventOption(_ op: String, _ field: WritableKeyPath<SocketIOSettings, String> & Sendable) -> Option {
        let flag = "socketio-\(op)-event"
        let help = op == "message" ? "Socket.IO event a room message arrives as: [room, data, offset]" : "Socket.IO event name of the room op '\(op)'"
        return Option(
            name: flag, kind: .string, help: help,
            apply: { c, v throws(Invalid) in
                guard !v.isEmpty, !SocketIOPacket.reservedEventNames.contains(v) else {
                    throw Invalid(description: "--\(flag): expected a non-reserved event name, got '\(v)'")
                }
                c.socketIO[keyPath: field] = v
            }, current: { $0.socketIO[keyPath: field] })
    }

    /// Checks the Socket.IO flags against the others.
    static func finalizeSocketIO(_ c: inout Config) throws(Invalid) {
        guard let p = c.socketIO.path else { return }
        if c.socketIO.matches(c.wsPath) || c.echoPath.map(c.socketIO.matches) == true {
            throw Invalid(description: "--socketio-path must differ from --ws-path and --echo-path")
        }
        let events = [c.socketIO.joinEvent, c.socketIO.leaveEvent, c.socketIO.publishEvent]
        if Set(events).count != 3 { throw Invalid(description: "--socketio-join-event, -leave-event and -publish-event must differ (\(p))") }
    }
}
