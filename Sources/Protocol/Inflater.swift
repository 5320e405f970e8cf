import CZlib

/// Inflates whole permessage-deflate messages (RFC 7692 §7.2.2) with zlib's raw DEFLATE and a
/// hard limit on the **inflated** size: output is produced in chunks of at most 64 KiB into a
/// buffer that never grows past `limit + 1` bytes, and inflation stops with
/// ``ProtocolError/messageTooLarge(limit:)`` (close 1009) as soon as the total passes the limit, so
/// a decompression bomb costs at most `limit` bytes of memory and the CPU to produce them.
///
/// Window 15 always: it inflates data made with any `client_max_window_bits`.
///
/// Sharing: with `noContextTakeover` (the peer negotiated `client_no_context_takeover`, which our
/// server always requests) the stream is reset after every message, so one instance per event
/// loop serves all of its connections: ``WebSocketReader`` calls it only once a compressed
/// message is complete, in one synchronous call, so no connection's state stays in it between
/// feeds. Without it (a peer that keeps its context) the instance belongs to that one connection.
///
/// Memory: about 7 KiB of state plus the 32 KiB window zlib allocates on first use
/// (``zlibBytes``), plus an output buffer kept up to 64 KiB between messages and freed after
/// larger ones (``bufferBytes``).
///
/// Not thread-safe: use an instance from one thread at a time (`@unchecked Sendable` only so that
/// a loop or a reader can own it).
public final class Inflater: @unchecked Sendable {
    /// True: every message starts from an empty window (the stream is reset after each).
    public let noContextTakeover: Bool
    private let stream: UnsafeMutablePointer<z_stream>
    private let allocated: UnsafeMutablePointer<Int>
    private var output: UnsafeMutableRawPointer?
    private var capacity = 0
    /// Largest output buffer so far, for tests of the bomb limit.
    private(set) var peakBufferBytes = 0

    /// Output kept allocated between messages; larger buffers are freed after their message.
    static let retainedCapacity = 64 * 1024
    /// Most output bytes one zlib call may produce before the limit is checked again.
    static let chunkSize = 64 * 1024

    /// - Parameter noContextTakeover: reset after every message (default true; required to share
    ///   the instance between connections). Traps when zlib cannot allocate its state.
    public init(noContextTakeover: Bool = true) {
        self.noContextTakeover = noContextTakeover
        stream = .allocate(capacity: 1)
        stream.initialize(to: z_stream())
        allocated = .allocate(capacity: 1)
        allocated.initialize(to: 0)
        cshim_use_counting_allocator(stream, allocated)
        let rc = cshim_inflateInit2(stream, -15)
        precondition(rc == Z_OK, "inflateInit2 failed: \(rc)")
    }

    deinit {
        inflateEnd(stream)
        stream.deinitialize(count: 1)
        stream.deallocate()
        allocated.deallocate()
        free(output)
    }

    /// Bytes zlib currently holds for this stream (state and, once used, the 32 KiB window).
    public var zlibBytes: Int { allocated.pointee }

    /// Bytes of output buffer kept between messages (0...64 KiB).
    public var bufferBytes: Int { capacity }

    /// Inflates one complete message: its payload (the bytes of all its frames, in order) plus the
    /// `00 00 ff ff` that §7.2.2 appends, then calls `body` with the inflated bytes, valid only
    /// during the call, and returns what `body` returned.
    ///
    /// - Parameter limit: most inflated bytes allowed (>= 0).
    /// - Throws: ``ProtocolError/messageTooLarge(limit:)`` as soon as more than `limit` bytes come
    ///   out; ``ProtocolError/invalidUTF8`` (close 1007, "invalid payload data") when the data is not
    ///   valid DEFLATE; whatever `body` throws. The instance stays usable after a throw.
    public func inflate<R>(
        _ compressed: UnsafeRawBufferPointer, limit: Int,
        _ body: (UnsafeRawBufferPointer) throws(ProtocolError) -> R
    ) throws(ProtocolError) -> R {
        defer { finishMessage() }
        let produced = try run(compressed, limit: max(0, limit))
        return try body(UnsafeRawBufferPointer(start: output, count: produced))
    }

    /// ``inflate(_:limit:_:)`` returning a copy; for tests and callers that keep the bytes.
    public func inflate(_ compressed: [UInt8], limit: Int) throws(ProtocolError) -> [UInt8] {
        try compressed.withUnsafeBytes { raw in
            Result { () throws(ProtocolError) in try inflate(raw, limit: limit) { Array($0) } }
        }.get()
    }

    /// The 4 octets §7.2.2 appends before inflating (the tail of an empty stored block).
    private static let trailer: UInt32 = UInt32(bigEndian: 0x0000_FFFF)

    /// Inflates into `output`; returns the number of bytes produced.
    private func run(_ compressed: UnsafeRawBufferPointer, limit: Int) throws(ProtocolError) -> Int {
        var produced = 0
        var start = 0
        repeat {
            // zlib counts input in 32 bits: hand it over at most 1 GiB at a time.
            let part = UnsafeRawBufferPointer(rebasing: compressed[start..<min(compressed.count, start + (1 << 30))])
            start += part.count
            if try feed(part, limit: limit, sizeHint: compressed.count, produced: &produced) { return produced }
        } while start < compressed.count
        var trailer = Self.trailer
        _ = try withUnsafeBytes(of: &trailer) { raw in
            Result { () throws(ProtocolError) in try feed(raw, limit: limit, sizeHint: compressed.count, produced: &produced) }
        }.get()
        return produced
    }

    /// Inflates all of `part`, growing `output` up to `limit + 1` bytes; returns true when the
    /// stream ended (a final block).
    private func feed(_ part: UnsafeRawBufferPointer, limit: Int, sizeHint: Int, produced: inout Int) throws(ProtocolError) -> Bool {
        let ceiling = limit == Int.max ? limit : limit + 1
        stream.pointee.next_in = part.baseAddress.map { UnsafeMutablePointer(mutating: $0.assumingMemoryBound(to: Bytef.self)) }
        stream.pointee.avail_in = uInt(part.count)
        while true {
            if produced == capacity {
                guard capacity < ceiling else { throw .messageTooLarge(limit: limit) }
                grow(to: min(ceiling, max(4096, capacity * 2, min(sizeHint * 4, Self.retainedCapacity))))
            }
            let room = min(capacity - produced, Self.chunkSize)
            stream.pointee.next_out = output!.advanced(by: produced).assumingMemoryBound(to: Bytef.self)
            stream.pointee.avail_out = uInt(room)
            let rc = CZlib.inflate(stream, Z_SYNC_FLUSH)
            produced += room - Int(stream.pointee.avail_out)
            if produced > limit { throw .messageTooLarge(limit: limit) }
            switch rc {
            case Z_OK, Z_BUF_ERROR:
                break
            case Z_STREAM_END:
                // A final block (BFINAL, §7.2.3.5): the message ends here; what follows,
                // including the appended trailer, is not part of it.
                keepWindowAcrossStreamEnd()
                return true
            default:
                throw .invalidUTF8
            }
            if stream.pointee.avail_in == 0, stream.pointee.avail_out > 0 { return false }
        }
    }

    private func grow(to newCapacity: Int) {
        guard let grown = realloc(output, newCapacity) else { fatalError("out of memory inflating \(newCapacity) bytes") }
        output = grown
        capacity = newCapacity
        peakBufferBytes = max(peakBufferBytes, newCapacity)
    }

    /// After a stream end with context takeover, the next message still refers to this window:
    /// carry it into the fresh stream as a preset dictionary.
    private func keepWindowAcrossStreamEnd() {
        if noContextTakeover { return }
        var window = [UInt8](repeating: 0, count: 32 * 1024)
        var length: uInt = 0
        _ = window.withUnsafeMutableBufferPointer { inflateGetDictionary(stream, $0.baseAddress, &length) }
        inflateReset(stream)
        _ = window.withUnsafeBufferPointer { inflateSetDictionary(stream, $0.baseAddress, length) }
    }

    /// Drops pointers into the caller's memory, resets the stream for the next message when no
    /// context is kept, and frees an output buffer that grew past the retained size.
    private func finishMessage() {
        stream.pointee.next_in = nil
        stream.pointee.next_out = nil
        stream.pointee.avail_in = 0
        stream.pointee.avail_out = 0
        if noContextTakeover { inflateReset(stream) }
        if capacity > Self.retainedCapacity {
            free(output)
            output = nil
            capacity = 0
        }
    }
}
