/// Builds WebSocket frames (RFC 6455 §5.2). Stateless; never fragments on its own.
///
/// A server sends unmasked frames (pass `maskingKey: nil`); a client must mask every frame
/// with a fresh random key (§5.3). RSV2 and RSV3 are always 0; RSV1 is set for a message
/// compressed with permessage-deflate (`compressed: true`, RFC 7692 §6), see ``Deflater``.
public enum FrameEncoder {
    /// 2, 4 or 10 bytes, plus 4 when masked.
    ///
    /// 7-bit length for 0...125, 16-bit for 126...65535, 64-bit above (§5.2, minimal encoding).
    @inlinable
    public static func headerSize(payloadLength: Int, masked: Bool) -> Int {
        let base = payloadLength <= 125 ? 2 : (payloadLength <= 0xFFFF ? 4 : 10)
        return masked ? base + 4 : base
    }

    /// Writes a header at the start of `buffer` (must be large enough); returns its size.
    ///
    /// The size is ``headerSize(payloadLength:masked:)``; `payloadLength` must be >= 0.
    /// The caller masks the payload itself (``applyMask(_:to:phase:)``) when passing a key.
    /// `compressed` sets RSV1: only on the first frame of a text or binary message whose payload
    /// came from a ``Deflater`` and only toward a peer that negotiated permessage-deflate (RFC 7692 §6).
    @inlinable
    public static func writeHeader(
        fin: Bool, opcode: Opcode, payloadLength: Int, maskingKey: UInt32?,
        into buffer: UnsafeMutableRawBufferPointer, compressed: Bool = false
    ) -> Int {
        let size = headerSize(payloadLength: payloadLength, masked: maskingKey != nil)
        precondition(buffer.count >= size && payloadLength >= 0, "frame header buffer too small")
        let maskBit: UInt8 = maskingKey == nil ? 0 : 0x80
        buffer[0] = (fin ? 0x80 : 0) | (compressed ? 0x40 : 0) | (opcode.rawValue & 0x0F)
        var offset: Int
        if payloadLength <= 125 {
            buffer[1] = maskBit | UInt8(payloadLength)
            offset = 2
        } else if payloadLength <= 0xFFFF {
            buffer[1] = maskBit | 126
            buffer.storeBytes(of: UInt16(payloadLength).bigEndian, toByteOffset: 2, as: UInt16.self)
            offset = 4
        } else {
            buffer[1] = maskBit | 127
            buffer.storeBytes(of: UInt64(payloadLength).bigEndian, toByteOffset: 2, as: UInt64.self)
            offset = 10
        }
        if let maskingKey {
            buffer.storeBytes(of: maskingKey.bigEndian, toByteOffset: offset, as: UInt32.self)
            offset += 4
        }
        return offset
    }

    /// A whole frame. Server frames are unmasked (maskingKey nil); client frames pass a random key (payload masked).
    /// `compressed: true` sets RSV1 for a payload from ``Deflater/compress(_:)`` (RFC 7692 §6).
    public static func frame(
        opcode: Opcode, payload: UnsafeRawBufferPointer, fin: Bool = true, maskingKey: UInt32? = nil,
        compressed: Bool = false
    ) -> [UInt8] {
        let header = headerSize(payloadLength: payload.count, masked: maskingKey != nil)
        return [UInt8](unsafeUninitializedCapacity: header + payload.count) { buffer, initialized in
            let raw = UnsafeMutableRawBufferPointer(buffer)
            _ = writeHeader(fin: fin, opcode: opcode, payloadLength: payload.count, maskingKey: maskingKey, into: raw, compressed: compressed)
            let body = UnsafeMutableRawBufferPointer(rebasing: raw[header...])
            if payload.count > 0 { body.copyMemory(from: payload) }
            if let maskingKey { _ = applyMask(maskingKey, to: body) }
            initialized = header + payload.count
        }
    }

    /// A whole frame, as the `UnsafeRawBufferPointer` variant above.
    public static func frame(opcode: Opcode, payload: [UInt8], fin: Bool = true, maskingKey: UInt32? = nil, compressed: Bool = false) -> [UInt8] {
        payload.withUnsafeBytes { frame(opcode: opcode, payload: $0, fin: fin, maskingKey: maskingKey, compressed: compressed) }
    }

    /// Close body: 2-byte code + UTF-8 reason, truncated at a character boundary so the body is <= 125 bytes. nil code -> empty body.
    ///
    /// RFC 6455 §5.5.1. The cut falls on a Unicode scalar boundary, so the reason stays valid UTF-8.
    /// With a nil code the reason is dropped (a reason needs a code).
    public static func closePayload(code: CloseCode?, reason: String = "") -> [UInt8] {
        guard let code else { return [] }
        var out: [UInt8] = [UInt8(code.rawValue >> 8), UInt8(code.rawValue & 0xFF)]
        let utf8 = Array(reason.utf8)
        var end = utf8.count
        if end > 123 {
            end = 123
            // Back up over continuation bytes so a multi-byte character is not split.
            while end > 0, utf8[end] & 0xC0 == 0x80 { end -= 1 }
        }
        out.append(contentsOf: utf8[..<end])
        return out
    }
}
