/// A WebSocket close status code: the first two bytes (big-endian) of a close frame's body (RFC 6455 §7.4).
///
/// A struct rather than a closed enum so that any code a peer sends can be represented; check
/// ``isValidOnWire`` before trusting one received from a peer.
///
/// Switchboard's own codes (4000–4999 is the private-use range, §7.4.2):
///
/// | code | name | meaning | client should |
/// | --- | --- | --- | --- |
/// | 4001 | ``authTimeout`` | no `auth` op arrived before the authentication deadline | reconnect and authenticate promptly |
/// | 4002 | ``authFailed`` | the token was rejected | not reconnect with the same token |
/// | 4003 | ``tokenExpired`` | the session's token expired while connected | fetch a new token, then reconnect |
/// | 4004 | ``slowConsumer`` | the client did not read fast enough (outbound queue over the mark) | reconnect and resume with `since` |
///
/// 1008 (``policyViolation``) means the client broke a rule (e.g. too many frames): retrying unchanged fails again.
public struct CloseCode: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    /// The 16-bit status code as sent on the wire.
    public var rawValue: UInt16

    /// Wraps any 16-bit value; see ``isValidOnWire``.
    public init(rawValue: UInt16) { self.rawValue = rawValue }

    /// 1000: the purpose of the connection has been fulfilled (§7.4.1).
    public static let normalClosure = CloseCode(rawValue: 1000)
    /// 1001: the endpoint is going away (server shutdown or drain, browser navigating away) (§7.4.1).
    public static let goingAway = CloseCode(rawValue: 1001)
    /// 1002: the peer violated the protocol (§7.4.1).
    public static let protocolError = CloseCode(rawValue: 1002)
    /// 1003: the endpoint cannot accept this kind of data (§7.4.1).
    public static let unsupportedData = CloseCode(rawValue: 1003)
    /// 1005: "no status code was present". Reporting only: MUST NOT be sent on the wire (§7.4.1).
    public static let noStatusReceived = CloseCode(rawValue: 1005)
    /// 1006: the connection closed without a close frame. Reporting only: MUST NOT be sent on the wire (§7.4.1).
    public static let abnormalClosure = CloseCode(rawValue: 1006)
    /// 1007: a message's data was inconsistent with its type, e.g. invalid UTF-8 in a text message (§7.4.1).
    public static let invalidPayloadData = CloseCode(rawValue: 1007)
    /// 1008: a message violated the endpoint's policy (§7.4.1).
    public static let policyViolation = CloseCode(rawValue: 1008)
    /// 1009: a message was too big to process (§7.4.1).
    public static let messageTooBig = CloseCode(rawValue: 1009)
    /// 1011: the server hit an unexpected condition (IANA registry, RFC 6455 §11.7).
    public static let internalError = CloseCode(rawValue: 1011)
    /// 1012: the service is restarting; the client may reconnect (IANA registry).
    public static let serviceRestart = CloseCode(rawValue: 1012)
    /// 1013: temporary overload or a dependency is down; try again later (IANA registry).
    public static let tryAgainLater = CloseCode(rawValue: 1013)

    /// 4001 (Switchboard): the client did not authenticate before the deadline.
    public static let authTimeout = CloseCode(rawValue: 4001)
    /// 4002 (Switchboard): authentication failed; retrying with the same token will fail again.
    public static let authFailed = CloseCode(rawValue: 4002)
    /// 4003 (Switchboard): the token expired during the session; reconnect with a fresh one.
    public static let tokenExpired = CloseCode(rawValue: 4003)
    /// 4004 (Switchboard): the client read too slowly and its outbound queue passed the limit; nothing was
    /// dropped silently: reconnect and resume from the last offset received.
    public static let slowConsumer = CloseCode(rawValue: 4004)

    /// Whether a peer may send this code (§7.4.1/§7.4.2): invalid are < 1000, 1004, 1005, 1006, 1015, 1016...2999, >= 5000.
    /// Valid: 1000-1003, 1007-1014, 3000-4999.
    /// Unassigned codes 1016...2999 are treated as invalid, as the Autobahn test suite expects.
    @inlinable public var isValidOnWire: Bool {
        switch rawValue {
        case 1000...1003, 1007...1014, 3000...4999: true
        default: false
        }
    }

    /// The code and, when known, its name, e.g. "1000 normalClosure".
    public var description: String {
        let name: String? =
            switch rawValue {
            case 1000: "normalClosure"
            case 1001: "goingAway"
            case 1002: "protocolError"
            case 1003: "unsupportedData"
            case 1005: "noStatusReceived"
            case 1006: "abnormalClosure"
            case 1007: "invalidPayloadData"
            case 1008: "policyViolation"
            case 1009: "messageTooBig"
            case 1011: "internalError"
            case 1012: "serviceRestart"
            case 1013: "tryAgainLater"
            case 4001: "authTimeout"
            case 4002: "authFailed"
            case 4003: "tokenExpired"
            case 4004: "slowConsumer"
            default: nil
            }
        return name.map { "\(rawValue) \($0)" } ?? String(rawValue)
    }
}
