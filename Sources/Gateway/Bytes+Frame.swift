import Protocol
import Runtime

extension Bytes {
    /// An unmasked server frame (RFC 6455 §5.2) around `payload`, built in one allocation.
    public convenience init(frame opcode: Opcode, payload: UnsafeRawBufferPointer) {
        let header = FrameEncoder.headerSize(payloadLength: payload.count, masked: false)
        self.init(count: header + payload.count) { out in
            _ = FrameEncoder.writeHeader(
                fin: true, opcode: opcode, payloadLength: payload.count, maskingKey: nil,
                into: UnsafeMutableRawBufferPointer(rebasing: out[0..<header]))
            if payload.count > 0 { (out.baseAddress! + header).copyMemory(from: payload.baseAddress!, byteCount: payload.count) }
        }
    }

    /// An unmasked server frame around `payload`.
    public static func frame(_ opcode: Opcode, _ payload: [UInt8]) -> Bytes {
        payload.withUnsafeBytes { Bytes(frame: opcode, payload: $0) }
    }

    /// The payload of an unmasked server frame built by ``init(frame:payload:)`` (valid while `self` lives).
    var framePayload: UnsafeRawBufferPointer {
        let code = count > 1 ? base.load(fromByteOffset: 1, as: UInt8.self) & 0x7F : 0
        let header = code < 126 ? 2 : code == 126 ? 4 : 10
        return UnsafeRawBufferPointer(start: base + header, count: max(0, count - header))
    }

    /// RSV1 set: a compressed message (RFC 7692 §6); what moves a peer's inflater window.
    var isCompressedFrame: Bool { count > 0 && base.load(as: UInt8.self) & 0x40 != 0 }

    /// The frame's opcode (low nibble of the first byte, RFC 6455 §5.2).
    var frameOpcode: Opcode { Opcode(rawValue: base.load(as: UInt8.self) & 0x0F) }
}
