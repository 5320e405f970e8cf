/// A violation of the Socket.IO v5 packet format (socketio/socket.io-protocol, version 5) found by
/// ``SocketIOPacket/decode(_:limits:)`` or ``SocketIOBinaryAssembler``.
///
/// Every case is a parse error in the reference server's sense: the Engine.IO session is closed
/// (the client reconnects). The process and other sessions are unaffected.
public enum SocketIOError: Error, Equatable, Sendable, CustomStringConvertible {
    /// An Engine.IO message with no bytes.
    case emptyPacket
    /// A first byte that is not a packet type `0`...`6`; the byte.
    case unknownPacketType(UInt8)
    /// CONNECT_ERROR (`4`) sent by a client: only a server may send it.
    case serverOnlyPacket
    /// A BINARY_EVENT / BINARY_ACK whose attachment count is missing, not a decimal number
    /// followed by `-`, zero, or over `limit`.
    case invalidAttachmentCount(limit: Int)
    /// A namespace longer than `limit` bytes or holding a control character.
    case invalidNamespace(limit: Int)
    /// An ack id with more than 16 digits or over `limit` (2^53 - 1 by default: JavaScript's largest exact integer).
    case ackIDOutOfRange(limit: Int)
    /// An ack id on a packet type that takes none (CONNECT, DISCONNECT).
    case unexpectedAckID
    /// An ACK without an id.
    case missingAckID
    /// A payload that is not valid JSON or has the wrong shape for its type; the reason, e.g.
    /// "EVENT payload must be an array starting with the event name".
    case invalidPayload(String)
    /// An event named like one the Socket.IO API reserves (`connect`, `disconnect`, …); the name.
    case reservedEventName(String)
    /// A BINARY_EVENT / BINARY_ACK whose `{"_placeholder":true,"num":N}` objects do not name each
    /// of its `attachments` exactly once (N from 0 to attachments - 1).
    case placeholderMismatch(attachments: Int)
    /// A text packet that is not valid UTF-8.
    case invalidUTF8
    /// A text packet arrived while `remaining` binary attachments of a BINARY_EVENT / BINARY_ACK were still due.
    case expectedAttachment(remaining: Int)
    /// A binary message arrived while no BINARY_EVENT / BINARY_ACK was waiting for attachments.
    case unexpectedAttachment

    /// One line for logs and metrics labels' context, e.g. "ack id out of range (max 9007199254740991)".
    public var description: String {
        switch self {
        case .emptyPacket: "empty packet"
        case .unknownPacketType(let b): "unknown packet type 0x\(String(b, radix: 16))"
        case .serverOnlyPacket: "CONNECT_ERROR may only be sent by a server"
        case .invalidAttachmentCount(let limit): "invalid attachment count (1...\(limit))"
        case .invalidNamespace(let limit): "invalid namespace (at most \(limit) bytes, no control characters)"
        case .ackIDOutOfRange(let limit): "ack id out of range (max \(limit))"
        case .unexpectedAckID: "ack id on a packet type that takes none"
        case .missingAckID: "ACK without an id"
        case .invalidPayload(let reason): reason
        case .reservedEventName(let name): "reserved event name '\(name.prefix(64))'"
        case .placeholderMismatch(let n): "the placeholders do not name attachments 0..<\(n) once each"
        case .invalidUTF8: "invalid UTF-8"
        case .expectedAttachment(let n): "text packet while \(n) binary attachment(s) were due"
        case .unexpectedAttachment: "binary message without a binary packet waiting for it"
        }
    }

    /// A short stable label for metrics, e.g. "ack_id_out_of_range".
    public var label: String {
        switch self {
        case .emptyPacket: "empty_packet"
        case .unknownPacketType: "unknown_packet_type"
        case .serverOnlyPacket: "server_only_packet"
        case .invalidAttachmentCount: "invalid_attachment_count"
        case .invalidNamespace: "invalid_namespace"
        case .ackIDOutOfRange: "ack_id_out_of_range"
        case .unexpectedAckID: "unexpected_ack_id"
        case .missingAckID: "missing_ack_id"
        case .invalidPayload: "invalid_payload"
        case .reservedEventName: "reserved_event_name"
        case .placeholderMismatch: "placeholder_mismatch"
        case .invalidUTF8: "invalid_utf8"
        case .expectedAttachment: "expected_attachment"
        case .unexpectedAttachment: "unexpected_attachment"
        }
    }
}
