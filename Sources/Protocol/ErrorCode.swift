/// Error codes sent in `error {code}` frames of Switchboard's client protocol.
///
/// A struct with static members so that a client can represent codes added later.
/// None of these closes the connection by itself; the gateway decides (see its close codes).
public struct ErrorCode: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    /// The code as sent, snake_case.
    public var rawValue: String

    /// Wraps any code string.
    public init(rawValue: String) { self.rawValue = rawValue }

    /// "bad_request": the frame is not a JSON object, or a field is missing or of the wrong type.
    public static let badRequest = ErrorCode(rawValue: "bad_request")
    /// "unknown_op": the `op` value is not one of auth, join, leave, publish, presence, analytics.
    public static let unknownOp = ErrorCode(rawValue: "unknown_op")
    /// "invalid_room": the room name fails ``Envelope/isValidRoomName(_:)``.
    public static let invalidRoom = ErrorCode(rawValue: "invalid_room")
    /// "not_joined": `leave` of a room the connection has not joined.
    public static let notJoined = ErrorCode(rawValue: "not_joined")
    /// "forbidden": the token's claims do not allow this room or op.
    public static let forbidden = ErrorCode(rawValue: "forbidden")
    /// "unavailable": a dependency (Redis, history) is down; retry later.
    public static let unavailable = ErrorCode(rawValue: "unavailable")
    /// "unknown": a publish was handed to the cluster bus but its answer was lost (e.g. Redis stalled and
    /// the connection was dropped): it may or may not have been stored and delivered. Retrying with the same
    /// `id` (HTTP: the same `Idempotency-Key`) within the idempotency window stores it at most once and
    /// answers the first offset.
    public static let unknown = ErrorCode(rawValue: "unknown")
    /// "too_many_rooms": joining would pass the per-connection room limit.
    public static let tooManyRooms = ErrorCode(rawValue: "too_many_rooms")
    /// "throttled": the connection sends faster than its rate limit; the op was dropped.
    public static let throttled = ErrorCode(rawValue: "throttled")
    /// "token_expired": the token expired; send a fresh `auth`.
    public static let tokenExpired = ErrorCode(rawValue: "token_expired")
    /// "unauthorized": an op other than `auth` before authentication, or the token was rejected.
    public static let unauthorized = ErrorCode(rawValue: "unauthorized")
    /// "internal": an unexpected server failure; the op may be retried.
    public static let `internal` = ErrorCode(rawValue: "internal")

    /// The raw code.
    public var description: String { rawValue }
}
