/// One piece of a frame as it arrives: the frame's header fields plus whatever payload bytes
/// of it the current input holds, already unmasked in place.
///
/// Every frame yields one `isStart` chunk as soon as its header is complete (its bytes may be
/// empty, so limits can be checked before any payload is buffered), then further non-empty
/// chunks as payload arrives; the last one has `isEnd`.
struct FrameChunk {
    var opcode: Opcode
    var fin: Bool
    /// The frame's declared payload length (§5.2), < 2^63.
    var payloadLength: UInt64
    /// Unmasked payload bytes inside the caller's input.
    var bytes: UnsafeMutableRawBufferPointer
    var isStart: Bool
    var isEnd: Bool
    /// RSV1 of the frame: set on the first frame of a compressed message (RFC 7692 §6).
    var compressed: Bool = false
}

/// Streaming WebSocket frame decoder (RFC 6455 §5.2): validates each header the moment its
/// bytes arrive and hands out payload in place (no copy).
///
/// State between feeds: at most a partial 14-byte header plus a few counters (< 64 bytes, no heap).
/// Checks here are per frame: masking by role (§5.1), RSV bits (§5.2), reserved opcodes (§5.2),
/// control frame FIN and length (§5.5), the 64-bit length's top bit (§5.2), and RSV1 only where
/// permessage-deflate gives it a meaning (RFC 7692 §6.1). Message-level rules
/// (fragment order, size limit, UTF-8) belong to ``MessageAssembler``.
struct FrameDecoder: Sendable {
    // Stored largest first so the struct packs into 45 bytes.
    private var header: (UInt64, UInt64) = (0, 0)
    private var payloadLength: UInt64 = 0
    private var remaining: UInt64 = 0
    private var maskingKey: UInt32 = 0
    private var headerCount: UInt8 = 0
    private var maskPhase: UInt8 = 0
    private var opcode = Opcode.continuation
    private var inPayload = false
    private var fin = false
    private var masked = false
    private var rsv1 = false
    /// True in the server role: every client frame must be masked; false: none may be.
    let expectMasked: Bool
    /// True when permessage-deflate was negotiated: RSV1 may be set on text and binary frames.
    /// Whether such a frame starts a message is the assembler's call.
    let allowsCompression: Bool

    init(role: WebSocketRole, allowsCompression: Bool = false) {
        expectMasked = role == .server
        self.allowsCompression = allowsCompression
    }

    /// True between frames (no partial header or payload pending).
    var isIdle: Bool { headerCount == 0 && !inPayload }

    /// Header length implied by the second byte: 2 + extended length + masking key.
    @inline(__always)
    private static func headerLength(_ b1: UInt8) -> Int {
        let len7 = b1 & 0x7F
        return 2 + (len7 == 126 ? 2 : len7 == 127 ? 8 : 0) + (b1 & 0x80 != 0 ? 4 : 0)
    }

    /// Rules decidable from the first two bytes, checked before the rest of the header arrives.
    @inline(__always)
    private func checkFirstTwo(_ b0: UInt8, _ b1: UInt8) throws(ProtocolError) {
        let op = Opcode(rawValue: b0 & 0x0F)
        // RSV2/RSV3 are never ours; RSV1 only with permessage-deflate, and never on a control or
        // continuation frame (RFC 7692 §6.1: only the first frame of a message carries it).
        if b0 & 0x30 != 0 { throw .reservedBitsSet }
        if b0 & 0x40 != 0, !allowsCompression || op.isControl || op == .continuation { throw .reservedBitsSet }
        if op.isReserved { throw .reservedOpcode(op.rawValue) }
        if op.isControl {
            if b0 & 0x80 == 0 { throw .fragmentedControlFrame }
            if b1 & 0x7F > 125 { throw .controlFrameTooLong }
        }
        let isMasked = b1 & 0x80 != 0
        if isMasked != expectMasked { throw expectMasked ? .unmaskedClientFrame : .maskedServerFrame }
    }

    /// Decodes a complete header at `p` (already checked by `checkFirstTwo`).
    @inline(__always)
    private mutating func startFrame(_ p: UnsafeRawPointer) throws(ProtocolError) {
        let b0 = p.load(as: UInt8.self)
        let b1 = p.load(fromByteOffset: 1, as: UInt8.self)
        var offset = 2
        var length = UInt64(b1 & 0x7F)
        if length == 126 {
            length = UInt64(UInt16(bigEndian: p.loadUnaligned(fromByteOffset: 2, as: UInt16.self)))
            offset = 4
        } else if length == 127 {
            length = UInt64(bigEndian: p.loadUnaligned(fromByteOffset: 2, as: UInt64.self))
            if length >> 63 != 0 { throw .payloadLengthTopBitSet }
            offset = 10
        }
        masked = b1 & 0x80 != 0
        maskingKey = masked ? UInt32(bigEndian: p.loadUnaligned(fromByteOffset: offset, as: UInt32.self)) : 0
        maskPhase = 0
        opcode = Opcode(rawValue: b0 & 0x0F)
        fin = b0 & 0x80 != 0
        rsv1 = b0 & 0x40 != 0
        payloadLength = length
        remaining = length
        inPayload = true
    }

    /// The next chunk from `input` starting at `offset` (advanced past what it covers), or nil
    /// when `input` holds nothing more to report (partial header kept for the next feed).
    mutating func next(_ input: UnsafeMutableRawBufferPointer, _ offset: inout Int) throws(ProtocolError) -> FrameChunk? {
        if inPayload { return payloadChunk(input, &offset, isStart: false) }
        let available = input.count - offset
        guard available > 0, let base = input.baseAddress else { return nil }
        if headerCount == 0, available >= 2 {
            let b0 = input[offset]
            let b1 = input[offset + 1]
            try checkFirstTwo(b0, b1)
            let needed = Self.headerLength(b1)
            if available >= needed {
                try startFrame(base + offset)
                offset += needed
                return payloadChunk(input, &offset, isStart: true)
            }
        }
        // The header spans feeds: collect it in `header`.
        var storage = header
        var count = Int(headerCount)
        defer { header = storage; headerCount = UInt8(count) }
        var needed = 2
        if count >= 2 { needed = withUnsafeBytes(of: &storage) { Self.headerLength($0[1]) } }
        while count < needed, offset < input.count {
            let byte = input[offset]
            withUnsafeMutableBytes(of: &storage) { $0[count] = byte }
            count += 1
            offset += 1
            if count == 2 {
                let (b0, b1) = withUnsafeBytes(of: &storage) { ($0[0], $0[1]) }
                try checkFirstTwo(b0, b1)
                needed = Self.headerLength(b1)
            }
        }
        guard count == needed else { return nil }
        count = 0
        let copy = storage
        try withUnsafeBytes(of: copy) { (raw) throws(ProtocolError) in try startFrame(raw.baseAddress!) }
        return payloadChunk(input, &offset, isStart: true)
    }

    @inline(__always)
    private mutating func payloadChunk(_ input: UnsafeMutableRawBufferPointer, _ offset: inout Int, isStart: Bool) -> FrameChunk? {
        let available = input.count - offset
        if !isStart && available == 0 { return nil }
        let take = Int(min(UInt64(available), remaining))
        let bytes = UnsafeMutableRawBufferPointer(rebasing: input[offset..<(offset + take)])
        if masked, take > 0 { maskPhase = UInt8(applyMask(maskingKey, to: bytes, phase: Int(maskPhase))) }
        offset += take
        remaining -= UInt64(take)
        let isEnd = remaining == 0
        if isEnd { inPayload = false }
        return FrameChunk(opcode: opcode, fin: fin, payloadLength: payloadLength, bytes: bytes, isStart: isStart, isEnd: isEnd, compressed: rsv1)
    }
}
