extension ProtocolError {
    /// The reason text sent in the close frame (RFC 6455 §7.1.6: at most 123 bytes of UTF-8; these are short
    /// and ASCII) and logged: what the peer did wrong, in words a client developer recognises.
    public var closeReason: String {
        switch self {
        case .unmaskedClientFrame: return "client frames must be masked"
        case .maskedServerFrame: return "server frames must not be masked"
        case .reservedBitsSet: return "RSV bits set without an extension"
        case .reservedOpcode(let o): return "reserved opcode \(o)"
        case .payloadLengthTopBitSet: return "64-bit length with the top bit set"
        case .controlFrameTooLong: return "control frame over 125 bytes"
        case .fragmentedControlFrame: return "fragmented control frame"
        case .unexpectedContinuation: return "continuation without a message"
        case .expectedContinuation: return "new message inside a fragmented one"
        case .messageTooLarge(let limit): return "message over \(limit) bytes"
        case .invalidUTF8: return "invalid UTF-8"
        case .invalidCloseCode(let c): return "invalid close code \(c)"
        case .invalidClosePayload: return "1-byte close payload"
        case .tooManyFragments(let limit): return "message in more than \(limit) fragments"
        }
    }
}
