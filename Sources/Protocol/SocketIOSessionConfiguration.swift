/// Settings of a ``SocketIOSession``.
public struct SocketIOSessionConfiguration: Equatable, Sendable {
    /// Namespaces a client may connect to; a CONNECT to any other gets
    /// `44<ns>,{"message":"Invalid namespace"}`. Default `["/"]`.
    public var namespaces: Set<String>
    /// Milliseconds between server pings (default 25,000, the reference default).
    public var pingInterval: Int
    /// Milliseconds the client has to answer a ping before the session closes (default 20,000).
    public var pingTimeout: Int
    /// Largest Engine.IO packet and polling body, in bytes, announced in the open packet (default 1,000,000).
    public var maxPayload: Int
    /// Socket.IO decoding limits (attachments, namespace length, ack id range).
    public var limits: SocketIOLimits
    /// Event that joins a room: `["join","lobby"]` or `["join","lobby","<since offset>"]`. Default "join".
    public var joinEvent: String
    /// Event that leaves a room: `["leave","lobby"]`. Default "leave".
    public var leaveEvent: String
    /// Event that publishes to a room: `["publish","lobby",<data>]`. Default "publish".
    public var publishEvent: String
    /// Event a room message arrives as: `["message","lobby",<data>,"<offset>"]`. Default "message".
    public var messageEvent: String
    /// Server-emitted events awaiting an ack, at most (default 256); further emits asking for an ack are refused.
    public var maxPendingAcks: Int
    /// Milliseconds after the open packet within which the client must have connected a
    /// namespace, else the session closes (default 45,000, the reference server's `connectTimeout`):
    /// an Engine.IO session that never speaks Socket.IO holds resources for nothing.
    public var connectTimeout: Int

    /// The defaults listed on each property, with `namespaces` given.
    public init(
        namespaces: Set<String> = ["/"], pingInterval: Int = 25_000, pingTimeout: Int = 20_000, maxPayload: Int = 1_000_000,
        limits: SocketIOLimits = SocketIOLimits(), joinEvent: String = "join", leaveEvent: String = "leave",
        publishEvent: String = "publish", messageEvent: String = "message", maxPendingAcks: Int = 256,
        connectTimeout: Int = 45_000
    ) {
        self.namespaces = namespaces
        self.pingInterval = pingInterval
        self.pingTimeout = pingTimeout
        self.maxPayload = maxPayload
        self.limits = limits
        self.joinEvent = joinEvent
        self.leaveEvent = leaveEvent
        self.publishEvent = publishEvent
        self.messageEvent = messageEvent
        self.maxPendingAcks = maxPendingAcks
        self.connectTimeout = connectTimeout
    }
}

/// Packets a ``SocketIOSession`` dropped without closing, for metrics (C36 steps 6 and 7).
public struct SocketIOSessionCounters: Equatable, Sendable {
    /// ACKs for an id the server is not waiting for: duplicates and unknown ids.
    public var ignoredAcks = 0
    /// EVENT / ACK packets for a namespace this client has not connected.
    public var unconnectedNamespacePackets = 0
    /// CONNECTs for a namespace already connected or being authenticated.
    public var duplicateConnects = 0
    /// Room ops with bad arguments (answered with an error ack when they had an id).
    public var rejectedRoomOps = 0
}
