import Glibc

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

    /// `count` bytes written by `body` into fresh storage (one allocation; frames are built this way).
    public init(count: Int, initializingWith body: (UnsafeMutableRawBufferPointer) -> Void) {
        self.count = count
        base = UnsafeMutableRawPointer.allocate(byteCount: max(count, 1), alignment: 8)
        body(UnsafeMutableRawBufferPointer(start: base, count: count))
    }

    deinit { base.deallocate() }
}
