/// One decoded server -> client frame, for clients (tests, bench tool); see ``Envelope/decodeServer(_:)``.
/// Fields absent from the frame (or of the wrong JSON type) are nil.
public struct ServerMessage: Sendable, Hashable {
    /// "hello", "joined", "left", "message", "ack", "presence", "error" or "reconnect".
    public var op: String
    /// `room` (joined, left, message, presence).
    public var room: String?
    /// `offset` (joined, message, ack).
    public var offset: String?
    /// `data` (message), compact JSON.
    public var data: JSONFragment?
    /// `id` (ack, error), compact JSON.
    public var id: JSONFragment?
    /// `code` (error), an ``ErrorCode`` raw value.
    public var code: String?
    /// `count` (presence): connections.
    public var count: Int?
    /// `users` (presence): distinct authenticated users.
    public var users: Int?
    /// `recovered` (joined).
    public var recovered: Bool?
    /// `after_ms` (reconnect), milliseconds.
    public var afterMs: Int?
    /// `session` (hello).
    public var session: String?
    /// `node` (hello).
    public var node: String?
    /// `message` (error).
    public var message: String?
    /// `heartbeat` (hello), seconds.
    public var heartbeat: Int?

    /// A message with `op` and every other field nil.
    public init(op: String) { self.op = op }
}
