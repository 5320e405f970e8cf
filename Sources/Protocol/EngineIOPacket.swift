import Foundation

/// One Engine.IO v4 packet (socketio/engine.io-protocol, revision 4, "Packet encoding").
///
/// Text form: one type digit followed by the data, e.g. `2` (ping), `3probe`, `4hello`.
/// On a WebSocket each packet is one frame: text packets in text frames, binary messages as a
/// binary frame holding only the data (no type byte in v4). In a polling payload a binary
/// message is the text `b` + base64 of its data (see ``EngineIOPayloadDecoder``).
public enum EngineIOPacket: Equatable, Sendable {
    /// `0` + the handshake JSON (server → client; see ``EngineIOOpen``).
    case open([UInt8])
    /// `1`: the sender closes the session.
    case close
    /// `2` + optional data; the server pings every `pingInterval`; `2probe` tests a new WebSocket during an upgrade.
    case ping([UInt8])
    /// `3` + optional data; the answer to a ping (`3probe` to a probe).
    case pong([UInt8])
    /// `4` + UTF-8 text: one message of the layer above (a Socket.IO packet).
    case message([UInt8])
    /// A binary message: a WebSocket binary frame, or `b<base64>` in a polling payload.
    case binary([UInt8])
    /// `5`: the client completes the upgrade to the WebSocket that answered its probe.
    case upgrade
    /// `6`: nothing; ends a pending poll during an upgrade.
    case noop

    /// The type digit of the text form; nil for ``binary(_:)``.
    public var typeDigit: UInt8? {
        switch self {
        case .open: UInt8(ascii: "0")
        case .close: UInt8(ascii: "1")
        case .ping: UInt8(ascii: "2")
        case .pong: UInt8(ascii: "3")
        case .message: UInt8(ascii: "4")
        case .upgrade: UInt8(ascii: "5")
        case .noop: UInt8(ascii: "6")
        case .binary: nil
        }
    }

    /// Decodes one text packet: a WebSocket text frame or one record of a polling payload. With
    /// `base64Allowed` a leading `b` marks a base64 binary message (always in polling; on a
    /// WebSocket from clients with engine.io-client's `forceBase64`).
    ///
    /// `maxPayload` bounds the packet's bytes (the handshake's `maxPayload`). Errors: ``EngineIOError``
    /// `emptyPacket`, `unknownPacketType`, `unexpectedData` (data on `1`, `5`, `6`),
    /// `invalidBase64`, `invalidUTF8`, `payloadTooLarge`.
    public static func decode(text: UnsafeRawBufferPointer, base64Allowed: Bool = false, maxPayload: Int = 1_000_000) throws(EngineIOError) -> EngineIOPacket {
        guard text.count <= maxPayload else { throw .payloadTooLarge(limit: maxPayload) }
        guard let first = text.first else { throw .emptyPacket }
        let data = UnsafeRawBufferPointer(rebasing: text[1...])
        if first == UInt8(ascii: "b"), base64Allowed {
            // Data(base64Encoded:) accepts only the padded standard alphabet, as engine.io-parser sends.
            guard let decoded = Data(base64Encoded: Data(data)) else { throw .invalidBase64 }
            return .binary(Array(decoded))
        }
        guard UTF8Validator.isValid(text) else { throw .invalidUTF8 }
        func empty(_ packet: EngineIOPacket) throws(EngineIOError) -> EngineIOPacket {
            guard data.isEmpty else { throw .unexpectedData(type: first) }
            return packet
        }
        switch first {
        case UInt8(ascii: "0"): return .open(Array(data))
        case UInt8(ascii: "1"): return try empty(.close)
        case UInt8(ascii: "2"): return .ping(Array(data))
        case UInt8(ascii: "3"): return .pong(Array(data))
        case UInt8(ascii: "4"): return .message(Array(data))
        case UInt8(ascii: "5"): return try empty(.upgrade)
        case UInt8(ascii: "6"): return try empty(.noop)
        default: throw .unknownPacketType(first)
        }
    }

    /// Decodes a WebSocket binary frame: always a binary message in v4. Error: `payloadTooLarge`.
    public static func decode(binaryFrame: UnsafeRawBufferPointer, maxPayload: Int = 1_000_000) throws(EngineIOError) -> EngineIOPacket {
        guard binaryFrame.count <= maxPayload else { throw .payloadTooLarge(limit: maxPayload) }
        return .binary(Array(binaryFrame))
    }

    /// The WebSocket frame for this packet: `(isBinary, payload)`, e.g. `(false, "3probe")`,
    /// or `(true, data)` for a binary message.
    public var webSocketFrame: (isBinary: Bool, payload: [UInt8]) {
        if case .binary(let data) = self { return (true, data) }
        var out: [UInt8] = []
        appendText(to: &out)
        return (false, out)
    }

    /// Appends the text form (`b` + base64 for a binary message, as in a polling payload).
    public func appendText(to out: inout [UInt8]) {
        guard let digit = typeDigit else {
            if case .binary(let data) = self {
                out.append(UInt8(ascii: "b"))
                out.append(contentsOf: Data(data).base64EncodedData())
            }
            return
        }
        out.append(digit)
        switch self {
        case .open(let d), .ping(let d), .pong(let d), .message(let d): out.append(contentsOf: d)
        case .close, .upgrade, .noop, .binary: break
        }
    }
}
