import Glibc
import Protocol

/// An immutable, reference-counted byte buffer with a stable address, so one encoded frame can sit in many
/// connections' outbound queues and go straight into `writev` without copying (DESIGN.md: encode once,
/// queue the same bytes to every member).
public final class Bytes: @unchecked Sendable {
    /// Start of the bytes; valid for the object's lifetime.
    public let base: UnsafeMutableRawPointer
    /// Length in bytes.
    public let count: Int

    /// Copies `bytes`.
    public init(_ bytes: [UInt8]) {
        count = bytes.count
        base = UnsafeMutableRawPointer.allocate(byteCount: max(count, 1), alignment: 8)
        bytes.withUnsafeBytes { if count > 0 { base.copyMemory(from: $0.baseAddress!, byteCount: count) } }
    }

    /// An unmasked server frame (RFC 6455 §5.2) around `payload`, built in one allocation.
    public init(frame opcode: Opcode, payload: UnsafeRawBufferPointer) {
        let header = FrameEncoder.headerSize(payloadLength: payload.count, masked: false)
        count = header + payload.count
        base = UnsafeMutableRawPointer.allocate(byteCount: count, alignment: 8)
        _ = FrameEncoder.writeHeader(fin: true, opcode: opcode, payloadLength: payload.count, maskingKey: nil,
                                     into: UnsafeMutableRawBufferPointer(start: base, count: header))
        if payload.count > 0 { (base + header).copyMemory(from: payload.baseAddress!, byteCount: payload.count) }
    }

    /// An unmasked server frame around `payload`.
    public static func frame(_ opcode: Opcode, _ payload: [UInt8]) -> Bytes {
        payload.withUnsafeBytes { Bytes(frame: opcode, payload: $0) }
    }

    deinit { base.deallocate() }
}
