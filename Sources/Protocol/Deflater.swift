import CZlib

/// Compresses whole WebSocket messages for permessage-deflate (RFC 7692 §7.2.1) with zlib's raw
/// DEFLATE. By default each message starts from an empty window: the output of one message never
/// depends on an earlier one, so a single compressed frame can go to every peer. With
/// `keepingWindow: true` a message may refer back to the earlier messages of the same instance
/// (context takeover, §7.2.2): valid only for a peer that inflated exactly those messages, in order,
/// and negotiated no `server_no_context_takeover` (``SharedDeflateStream`` keeps that bookkeeping).
///
/// Memory: zlib holds (1 << (windowBits + 2)) + (1 << (memoryLevel + 9)) bytes plus a ~6 KiB
/// state, i.e. 256 KiB at the defaults (window 15, memory level 8), allocated once in `init` and
/// reused for every message (``zlibBytes`` reports the exact figure). Because no context carries
/// over, one instance per thread serves every connection on it: keep one per event loop (or one
/// for the thread that encodes room messages once per node), never one per connection.
///
/// Not thread-safe: use an instance from one thread at a time (it is `@unchecked Sendable` only
/// so that a loop can own it).
public final class Deflater: @unchecked Sendable {
    /// Base-2 log of the LZ77 window, 9...15.
    public let windowBits: Int
    /// zlib's memLevel, 1...9: the hash table and symbol buffer size.
    public let memoryLevel: Int
    private let stream: UnsafeMutablePointer<z_stream>
    private let allocated: UnsafeMutablePointer<Int>

    /// - Parameters:
    ///   - windowBits: 9...15 (default 15); a peer that negotiated `server_max_window_bits=N`
    ///     needs a deflater with window N for payloads longer than 2^N bytes.
    ///   - memoryLevel: 1...9 (default 8, zlib's default).
    ///   - level: compression level 1...9 (default 6, zlib's default).
    /// Traps when zlib cannot allocate its state (as any Swift allocation failure does).
    public init(windowBits: Int = 15, memoryLevel: Int = 8, level: Int = 6) {
        precondition((9...15).contains(windowBits) && (1...9).contains(memoryLevel) && (1...9).contains(level), "bad deflate parameters")
        self.windowBits = windowBits
        self.memoryLevel = memoryLevel
        stream = .allocate(capacity: 1)
        stream.initialize(to: z_stream())
        allocated = .allocate(capacity: 1)
        allocated.initialize(to: 0)
        cshim_use_counting_allocator(stream, allocated)
        // Negative window bits: raw DEFLATE, no zlib header or checksum (§7.2.1).
        let rc = cshim_deflateInit2(stream, Int32(level), -Int32(windowBits), Int32(memoryLevel), Z_DEFAULT_STRATEGY)
        precondition(rc == Z_OK, "deflateInit2 failed: \(rc)")
    }

    deinit {
        deflateEnd(stream)
        stream.deinitialize(count: 1)
        stream.deallocate()
        allocated.deallocate()
    }

    /// Bytes zlib currently holds for this compressor (state, window, hash chains, buffers).
    public var zlibBytes: Int { allocated.pointee }

    /// The compressed form of `payload` as sent in a frame: DEFLATE blocks ending in a sync flush
    /// with its trailing `00 00 ff ff` removed (§7.2.1). An empty payload gives `[0x00]` (§7.2.3.6).
    ///
    /// Unless `keepingWindow`, the window is reset first, so the result depends on `payload` alone.
    /// With `keepingWindow`, the result may refer to the messages compressed before it since the last
    /// ``reset()`` (RFC 7692 §7.2.2: the peer must inflate them all, in order, with one window).
    /// `payload` must be shorter than 4 GiB (zlib counts input in 32 bits); messages are far smaller.
    public func compress(_ payload: UnsafeRawBufferPointer, keepingWindow: Bool = false) -> [UInt8] {
        precondition(payload.count < Int(UInt32.max), "payload too large for one deflate call")
        if !keepingWindow { deflateReset(stream) }
        // deflateBound covers Z_FINISH; a sync flush adds an empty stored block (5 bytes) at most. Output
        // goes straight into the array's storage (no per-byte work, which costs in unoptimised builds).
        var capacity = Int(deflateBound(stream, uLong(payload.count))) + 16
        stream.pointee.next_in = payload.baseAddress.map { UnsafeMutablePointer(mutating: $0.assumingMemoryBound(to: Bytef.self)) }
        stream.pointee.avail_in = uInt(payload.count)
        var out = [UInt8]()
        while true {
            let produced = [UInt8](unsafeUninitializedCapacity: capacity) { buffer, count in
                stream.pointee.next_out = buffer.baseAddress!
                stream.pointee.avail_out = uInt(capacity)
                // Z_SYNC_FLUSH with all input given cannot fail on a valid stream; Z_BUF_ERROR only
                // means no progress was possible, which the loop condition handles.
                _ = deflate(stream, Z_SYNC_FLUSH)
                count = capacity - Int(stream.pointee.avail_out)
            }
            out += produced
            if stream.pointee.avail_out != 0 && stream.pointee.avail_in == 0 { break }
            capacity = max(capacity, 4096)
        }
        stream.pointee.next_in = nil
        stream.pointee.next_out = nil
        if out.count >= 4, out[out.count - 4] == 0, out[out.count - 3] == 0, out[out.count - 2] == 0xFF, out[out.count - 1] == 0xFF {
            out.removeLast(4)
        }
        return out
    }

    /// ``compress(_:keepingWindow:)`` of a byte array.
    public func compress(_ payload: [UInt8], keepingWindow: Bool = false) -> [UInt8] {
        payload.withUnsafeBytes { compress($0, keepingWindow: keepingWindow) }
    }

    /// Empties the window: the next message refers to nothing before it.
    public func reset() { deflateReset(stream) }

    /// A whole frame (FIN set) carrying `payload` compressed, RSV1 set (RFC 7692 §6), or nil when
    /// compression would not make the payload shorter (send it uncompressed instead: RSV1 is per message).
    ///
    /// `opcode` is `.text` or `.binary`. Servers pass no `maskingKey`; clients a fresh random key (RFC 6455 §5.3).
    public func compressedFrame(opcode: Opcode, payload: UnsafeRawBufferPointer, maskingKey: UInt32? = nil) -> [UInt8]? {
        let compressed = compress(payload)
        guard compressed.count < payload.count else { return nil }
        return compressed.withUnsafeBytes { FrameEncoder.frame(opcode: opcode, payload: $0, maskingKey: maskingKey, compressed: true) }
    }
}
