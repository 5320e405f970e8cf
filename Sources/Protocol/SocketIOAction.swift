/// What a ``SocketIOSession`` asks its owner (the gateway) to do; performed in order.
public enum SocketIOAction: Equatable, Sendable {
    /// Send this Engine.IO packet on the session's active transport (a WebSocket frame, or the
    /// next poll answer when polling).
    case send(EngineIOPacket)
    /// Send this packet on the WebSocket that is probing an upgrade (`3probe`).
    case sendOnProbe(EngineIOPacket)
    /// The probed WebSocket is now the active transport: move packets queued for polling onto
    /// it, in order, and stop serving polls for this sid (answer them 400, code 3, as the
    /// reference server does after an upgrade).
    case upgraded
    /// Check the CONNECT of `namespace` (`auth`: the payload object as sent, nil when there was none) through the
    /// JWT / auth-backend path, then call ``SocketIOSession/connectResult(namespace:_:)``.
    /// `recovery` is set when the client asks to recover an earlier session (`pid` + `offset`).
    case authenticate(namespace: String, auth: JSONFragment?, recovery: SocketIORecovery?)
    /// The client joins `room` (resuming after offset `since` when given); answer the ack id, if any.
    case join(namespace: String, room: String, since: String?, ackID: Int?)
    /// The client leaves `room`; answer the ack id, if any.
    case leave(namespace: String, room: String, ackID: Int?)
    /// The client publishes `data` to `room`; answer the ack id, if any, with the offset.
    case publish(namespace: String, room: String, data: JSONFragment, ackID: Int?)
    /// Any other event: forward it to the backend event proxy, or answer the ack id with an error
    /// when none is configured (see ``SocketIOSession/answerError(namespace:ackID:code:message:)``).
    case forward(namespace: String, event: String, arguments: [JSONFragment], attachments: [[UInt8]], ackID: Int?)
    /// The client acknowledged the server event with id `id` (sent by ``SocketIOSession/emit(namespace:event:arguments:attachments:expectingAck:)``).
    case ackReceived(namespace: String, id: Int, arguments: [JSONFragment], attachments: [[UInt8]])
    /// The client left `namespace` (DISCONNECT): drop what was joined through it.
    case namespaceClosed(namespace: String)
    /// Close the session (every transport) for `reason`; nothing more comes from this session.
    case close(SocketIOCloseReason)
}

/// Why a ``SocketIOSession`` closed.
public enum SocketIOCloseReason: Equatable, Sendable, CustomStringConvertible {
    /// No pong within `pingTimeout` of a ping.
    case pingTimeout
    /// No namespace connected within `connectTimeout` of the open packet.
    case connectTimeout
    /// The client sent an Engine.IO close packet (`1`), or left its last namespace.
    case clientClosed
    /// A malformed Engine.IO packet or polling body (a polling POST answers 400).
    case engineIOError(EngineIOError)
    /// A malformed Socket.IO packet (C35 step 7: `44{…}` from a client, `49`).
    case socketIOError(SocketIOError)
    /// A well-formed packet that is not allowed now, e.g. `0` (open) or `5` (upgrade) on the active transport; the reason.
    case unexpectedPacket(String)
    /// The owner closed it (``SocketIOSession/close()``), e.g. during a drain.
    case serverClosed

    /// A short stable label for metrics: "ping_timeout", "client_closed", "engineio_error", … .
    public var label: String {
        switch self {
        case .pingTimeout: "ping_timeout"
        case .connectTimeout: "connect_timeout"
        case .clientClosed: "client_closed"
        case .engineIOError: "engineio_error"
        case .socketIOError: "socketio_error"
        case .unexpectedPacket: "unexpected_packet"
        case .serverClosed: "server_closed"
        }
    }

    /// One line for logs.
    public var description: String {
        switch self {
        case .pingTimeout: "ping timeout"
        case .connectTimeout: "no namespace connected in time"
        case .clientClosed: "closed by the client"
        case .engineIOError(let e): "Engine.IO parse error: \(e)"
        case .socketIOError(let e): "Socket.IO parse error: \(e)"
        case .unexpectedPacket(let why): "unexpected packet: \(why)"
        case .serverClosed: "closed by the server"
        }
    }
}

/// What socket.io-client (4.6+) adds to its CONNECT payload when it asks to recover a session:
/// `40{"pid":"…","offset":"…",…auth}`. `pid` is the private id of the earlier session (sent by
/// the server in its CONNECT answer); `offset` the last string argument of the last event it received.
public struct SocketIORecovery: Equatable, Sendable {
    /// The private session id the server handed out (`40{"sid":…,"pid":…}`).
    public var pid: String
    /// The last offset the client saw; nil when it had received no event yet.
    public var offset: String?

    /// Both fields given.
    public init(pid: String, offset: String?) {
        self.pid = pid
        self.offset = offset
    }
}

/// The outcome of a CONNECT's authentication, given to ``SocketIOSession/connectResult(namespace:_:)``.
public enum SocketIOConnectResult: Equatable, Sendable {
    /// Connected: answer `40…{"sid":socketID[,"pid":pid]}`. `socketID` must not be the Engine.IO
    /// sid; `pid` enables recovery for the client (nil: the client will not try).
    case accepted(socketID: String, pid: String?)
    /// Refused: answer `44…{"message":message[,"data":data]}`; the namespace stays unconnected.
    case rejected(message: String, data: JSONFragment?)
}
