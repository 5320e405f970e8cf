/// A violation of RFC 6455 (or of the configured size limit) found while reading frames.
///
/// Thrown by ``WebSocketReader/feed(_:_:)``. The connection must then be failed (§7.1.7):
/// send a close frame with ``closeCode`` and close the TCP connection.
public enum ProtocolError: Error, Equatable, Sendable, CustomStringConvertible {
    /// Server role: a client frame without the MASK bit (§5.1). → 1002
    case unmaskedClientFrame
    /// Client role: a server frame with the MASK bit (§5.1). → 1002
    case maskedServerFrame
    /// RSV1/2/3 set where no negotiated extension defines it (§5.2): any RSV bit without
    /// permessage-deflate; with it, RSV2/RSV3, or RSV1 on a control or continuation frame (RFC 7692 §6.1). → 1002
    case reservedBitsSet
    /// An opcode in 0x3...0x7 or 0xB...0xF (§5.2). → 1002
    case reservedOpcode(UInt8)
    /// A 64-bit payload length with its most significant bit set (§5.2). → 1002
    case payloadLengthTopBitSet
    /// A control frame with a payload longer than 125 bytes (§5.5). → 1002
    case controlFrameTooLong
    /// A control frame with FIN = 0 (§5.5). → 1002
    case fragmentedControlFrame
    /// A continuation frame while no fragmented message is open (§5.4). → 1002
    case unexpectedContinuation
    /// A new text or binary frame while a fragmented message is still open (§5.4). → 1002
    case expectedContinuation
    /// A message (sum of its fragments) longer than `limit` bytes; for a compressed message, its
    /// inflated size (a decompression bomb stops here, RFC 7692 §8.1). → 1009
    case messageTooLarge(limit: Int)
    /// A text message or close reason that is not valid UTF-8 (§8.1). → 1007
    ///
    /// Also thrown, for now, for a compressed message whose payload is not valid DEFLATE
    /// (RFC 7692 §7.2.2): the close code, 1007 "invalid payload data", is the right one, and a case
    /// of its own would break the exhaustive switch in the gateway's `Connection.reason(for:)`.
    case invalidUTF8
    /// A close frame whose code may not be sent on the wire (§7.4, see ``CloseCode/isValidOnWire``). → 1002
    case invalidCloseCode(UInt16)
    /// A close frame with a 1-byte body (§5.5.1). → 1002
    case invalidClosePayload
    /// A fragmented message in more than `limit` frames (the reader's `maxFragments`), however small
    /// they are: each frame costs the reader work, so their number is bounded like their bytes. → 1008
    case tooManyFragments(limit: Int)

    /// The close code to fail the connection with: 1007 for ``invalidUTF8``, 1009 for
    /// ``messageTooLarge(limit:)``, 1008 (policy violation) for ``tooManyFragments(limit:)``,
    /// 1002 for everything else.
    public var closeCode: CloseCode {
        switch self {
        case .invalidUTF8: .invalidPayloadData
        case .messageTooLarge: .messageTooBig
        case .tooManyFragments: .policyViolation
        case .unmaskedClientFrame, .maskedServerFrame, .reservedBitsSet, .reservedOpcode,
            .payloadLengthTopBitSet, .controlFrameTooLong, .fragmentedControlFrame,
            .unexpectedContinuation, .expectedContinuation, .invalidCloseCode, .invalidClosePayload:
            .protocolError
        }
    }

    /// Short text suitable for a close frame's reason or a log line.
    public var description: String {
        switch self {
        case .unmaskedClientFrame: "unmasked client frame"
        case .maskedServerFrame: "masked server frame"
        case .reservedBitsSet: "reserved bits set"
        case .reservedOpcode(let op): "reserved opcode 0x" + String(op, radix: 16)
        case .payloadLengthTopBitSet: "payload length has its top bit set"
        case .controlFrameTooLong: "control frame longer than 125 bytes"
        case .fragmentedControlFrame: "fragmented control frame"
        case .unexpectedContinuation: "continuation frame without a message"
        case .expectedContinuation: "new data frame inside a fragmented message"
        case .messageTooLarge(let limit): "message larger than \(limit) bytes"
        case .invalidUTF8: "invalid UTF-8"
        case .invalidCloseCode(let code): "invalid close code \(code)"
        case .invalidClosePayload: "1-byte close payload"
        case .tooManyFragments(let limit): "message in more than \(limit) fragments"
        }
    }
}
