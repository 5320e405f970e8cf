/// A violation of the Engine.IO v4 wire format (socketio/engine.io-protocol, revision 4) found by
/// ``EngineIOPacket`` or ``EngineIOPayloadDecoder``.
///
/// On a WebSocket the connection is then closed (Engine.IO's "parse error"); on a polling POST
/// the answer is HTTP 400 and the session is closed, as the reference server does.
public indirect enum EngineIOError: Error, Equatable, Sendable, CustomStringConvertible {
    /// A packet with no bytes at all (no type digit).
    case emptyPacket
    /// A first byte that is not a packet type `0`...`6` (nor `b` in a polling payload); the byte.
    case unknownPacketType(UInt8)
    /// Data after a type that carries none (`1` close, `5` upgrade, `6` noop); the type digit.
    case unexpectedData(type: UInt8)
    /// A `b`-prefixed polling packet whose remainder is not valid base64.
    case invalidBase64
    /// A text packet or polling payload that is not valid UTF-8.
    case invalidUTF8
    /// A packet or a whole polling body longer than `limit` bytes (the handshake's `maxPayload`).
    case payloadTooLarge(limit: Int)
    /// More than `limit` packets in one polling body.
    case tooManyPackets(limit: Int)
    /// Packet number `index` (from 0) of a polling body was bad.
    case inPayload(index: Int, EngineIOError)

    /// The error of the packet itself, looking through ``inPayload(index:_:)``.
    public var underlying: EngineIOError {
        if case .inPayload(_, let error) = self { return error.underlying }
        return self
    }

    /// One line for logs, e.g. "packet 2 of the payload: unknown packet type 0x39".
    public var description: String {
        switch self {
        case .emptyPacket: "empty packet"
        case .unknownPacketType(let b): "unknown packet type 0x\(String(b, radix: 16))"
        case .unexpectedData(let t): "packet type \(Character(Unicode.Scalar(t))) carries no data"
        case .invalidBase64: "invalid base64 in a binary packet"
        case .invalidUTF8: "invalid UTF-8"
        case .payloadTooLarge(let limit): "payload over maxPayload (\(limit) bytes)"
        case .tooManyPackets(let limit): "more than \(limit) packets in one payload"
        case .inPayload(let index, let error): "packet \(index) of the payload: \(error)"
        }
    }
}
