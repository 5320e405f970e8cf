import Protocol
import Runtime

extension Bytes {
    /// An unmasked server frame (RFC 6455 §5.2) around `payload`, built in one allocation.
    public convenience init(frame opcode: Opcode, payload: UnsafeRawBufferPointer) {
        let header = FrameEncoder.headerSize(payloadLength: payload.count, masked: false)
        self.init(count: header + payload.count) { out in
            _ = FrameEncoder.writeHeader(fin: true, opcode: opcode, payloadLength: payload.count, maskingKey: nil,
                                         into: UnsafeMutableRawBufferPointer(rebasing: out[0..<header]))
            if payload.count > 0 { (out.baseAddress! + header).copyMemory(from: payload.baseAddress!, byteCount: payload.count) }
        }
    }

    /// An unmasked server frame around `payload`.
    public static func frame(_ opcode: Opcode, _ payload: [UInt8]) -> Bytes {
        payload.withUnsafeBytes { Bytes(frame: opcode, payload: $0) }
    }
}
