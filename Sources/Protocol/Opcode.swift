/// A WebSocket frame opcode: the low 4 bits of a frame's first byte (RFC 6455 §5.2).
///
/// A struct rather than a closed enum so that any value a peer sends can be represented;
/// the decoder rejects reserved values with ``ProtocolError/reservedOpcode(_:)``.
public struct Opcode: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    /// The 4-bit opcode, 0x0...0xF. Only the low 4 bits are meaningful on the wire.
    public var rawValue: UInt8

    /// Wraps `rawValue` as is; use values 0x0...0xF.
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    /// 0x0: a continuation frame of a fragmented message (§5.4).
    public static let continuation = Opcode(rawValue: 0x0)
    /// 0x1: a text frame; the whole message must be valid UTF-8 (§5.6, §8.1).
    public static let text = Opcode(rawValue: 0x1)
    /// 0x2: a binary frame (§5.6).
    public static let binary = Opcode(rawValue: 0x2)
    /// 0x8: a close frame, body = optional 2-byte code + UTF-8 reason (§5.5.1).
    public static let close = Opcode(rawValue: 0x8)
    /// 0x9: a ping; the peer answers with a pong carrying the same payload (§5.5.2).
    public static let ping = Opcode(rawValue: 0x9)
    /// 0xA: a pong (§5.5.3).
    public static let pong = Opcode(rawValue: 0xA)

    /// True for 0x8...0xF: control frames are never fragmented and carry at most 125 bytes (§5.5).
    @inlinable public var isControl: Bool { rawValue & 0x8 != 0 }

    /// True for the values RFC 6455 leaves undefined: 0x3...0x7 (data) and 0xB...0xF (control) (§5.2).
    @inlinable public var isReserved: Bool {
        let v = rawValue & 0xF
        return (v >= 0x3 && v <= 0x7) || v >= 0xB
    }

    /// "text", "binary", … or "opcode(0x3)" for reserved values.
    public var description: String {
        switch rawValue {
        case 0x0: "continuation"
        case 0x1: "text"
        case 0x2: "binary"
        case 0x8: "close"
        case 0x9: "ping"
        case 0xA: "pong"
        default: "opcode(0x" + String(rawValue, radix: 16, uppercase: true) + ")"
        }
    }
}
