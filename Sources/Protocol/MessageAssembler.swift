/// Turns frame chunks into messages (RFC 6455 §5.4–§5.6): enforces fragment order and the
/// message size limit, validates text incrementally, delivers control frames at once (even
/// between the fragments of a message) and checks close bodies (§5.5.1, §7.4).
///
/// Zero-copy when a whole unfragmented frame is inside one input; otherwise the message is
/// copied into `buffer`, which is released when the message completes (an idle assembler holds
/// no heap memory).
///
/// With an ``Inflater`` (permessage-deflate, RFC 7692 §6–§7.2.2) a message whose first frame has
/// RSV1 is gathered compressed (zero-copy when it is one frame inside one input) and inflated in one
/// call when its last frame arrives; UTF-8 is then checked on the inflated text. Its frames may
/// declare up to ``compressedWireLimit`` bytes in total; the inflated size is held to `maxMessageSize`.
struct MessageAssembler: Sendable {
    let maxMessageSize: Int
    /// Inflates compressed messages; nil when permessage-deflate was not negotiated.
    let inflater: Inflater?
    /// True while the message being received is compressed.
    private var compressed = false
    /// Most data frames one message may span (>= 1).
    /// 32 bits: this struct lives in every connection, and a million fragments is already absurd.
    private let fragmentLimit: UInt32
    var maxFragments: Int { Int(fragmentLimit) }
    /// Data frames of the current message seen so far (its first frame included).
    private var fragmentCount: UInt32 = 0
    /// `.text` or `.binary` while a message is being received (first frame seen, FIN not yet).
    private var messageOpcode: Opcode?
    /// Sum of the declared lengths of this message's frames so far.
    private var declaredSize: UInt64 = 0
    private var buffer: [UInt8] = []
    private var utf8 = UTF8Validator()
    /// Payload of a control frame split across feeds (<= 125 bytes).
    private var control: [UInt8] = []
    /// Set once a valid close frame has been delivered.
    private(set) var receivedClose = false

    /// Larger first reservations would let a peer make us allocate a declared size it never sends.
    private static let maxInitialReservation = 64 * 1024

    init(maxMessageSize: Int, maxFragments: Int = 1000, inflater: Inflater? = nil) {
        self.maxMessageSize = maxMessageSize
        self.fragmentLimit = UInt32(clamping: max(1, maxFragments))
        self.inflater = inflater
    }

    /// Largest sum of declared frame lengths for a compressed message: `maxMessageSize` plus
    /// n/2048 + 64 bytes, above zlib's worst-case growth of incompressible data at its usual settings
    /// (deflateBound: n/4096 + n/16384 + 7), so that a message that inflates to at most the limit is
    /// not refused for its wire size.
    var compressedWireLimit: UInt64 {
        let limit = UInt64(maxMessageSize)
        return limit + limit / 2048 + 64
    }

    /// Heap bytes held for partial messages (0 when idle).
    var bufferedCapacity: Int { buffer.capacity + control.capacity }

    /// True when no message or control frame is partly received.
    var isIdle: Bool { messageOpcode == nil && control.isEmpty }

    /// Applies the per-frame rules to a data frame's first chunk (fragment order, fragment count,
    /// declared size) and returns the frame's 1-based index in its message. ``handle(_:frameStarted:_:)``
    /// does this itself unless told it was done (the reader does it first, to report the frame before
    /// its payload).
    mutating func startDataFrame(_ chunk: FrameChunk) throws(ProtocolError) -> Int {
        if chunk.opcode == .continuation {
            guard messageOpcode != nil else { throw .unexpectedContinuation }
            // Empty continuations cost no bytes, so the size limit alone does not bound them.
            guard fragmentCount < fragmentLimit else { throw .tooManyFragments(limit: maxFragments) }
            fragmentCount += 1
        } else {
            guard messageOpcode == nil else { throw .expectedContinuation }
            messageOpcode = chunk.opcode
            declaredSize = 0
            fragmentCount = 1
            utf8.reset()
            // The decoder lets RSV1 through on a data frame only when deflate was negotiated.
            compressed = chunk.compressed
        }
        // Checked on the declared length, before any payload is stored.
        let wireLimit = compressed ? compressedWireLimit : UInt64(maxMessageSize)
        guard declaredSize + chunk.payloadLength <= wireLimit else {
            throw .messageTooLarge(limit: maxMessageSize)
        }
        declaredSize += chunk.payloadLength
        return Int(fragmentCount)
    }

    /// Processes one chunk; calls `deliver` when it completes a message or control frame and
    /// returns what `deliver` returned (true when nothing was delivered). `frameStarted`: the
    /// caller already passed this data chunk to ``startDataFrame(_:)``.
    mutating func handle(_ chunk: FrameChunk, frameStarted: Bool = false, _ deliver: (WebSocketEvent) -> Bool) throws(ProtocolError) -> Bool {
        if chunk.opcode.isControl {
            if chunk.isStart, chunk.isEnd {
                return try deliverControl(chunk.opcode, UnsafeRawBufferPointer(chunk.bytes), deliver)
            }
            control.append(contentsOf: UnsafeRawBufferPointer(chunk.bytes))
            guard chunk.isEnd else { return true }
            let body = control
            control = []
            // Array.withUnsafeBytes is untyped `rethrows`: carry the typed error out in a Result.
            return try body.withUnsafeBytes { bytes in
                Result { () throws(ProtocolError) in try deliverControl(chunk.opcode, bytes, deliver) }
            }.get()
        }

        if chunk.isStart, !frameStarted { _ = try startDataFrame(chunk) }
        let isText = messageOpcode == .text
        // Compressed text is checked once inflated.
        if isText, !compressed, !utf8.validate(UnsafeRawBufferPointer(chunk.bytes)) { throw .invalidUTF8 }
        let completesMessage = chunk.isEnd && chunk.fin

        if completesMessage, chunk.opcode != .continuation, UInt64(chunk.bytes.count) == chunk.payloadLength {
            // The whole message is this one chunk (its header may have come in an earlier feed):
            // deliver it in place.
            messageOpcode = nil
            let bytes = UnsafeRawBufferPointer(chunk.bytes)
            if compressed { return try inflateAndDeliver(bytes, isText: isText, deliver) }
            if isText, !utf8.isComplete { throw .invalidUTF8 }
            return deliver(isText ? .text(bytes) : .binary(bytes))
        }

        if !chunk.bytes.isEmpty {
            if buffer.capacity == 0 {
                let rest = declaredSize - UInt64(buffer.count)
                buffer.reserveCapacity(Int(min(rest, UInt64(Self.maxInitialReservation))))
            }
            buffer.append(contentsOf: UnsafeRawBufferPointer(chunk.bytes))
        }
        guard completesMessage else { return true }
        messageOpcode = nil
        let message = buffer
        buffer = []
        if compressed {
            return try message.withUnsafeBytes { bytes in
                Result { () throws(ProtocolError) in try inflateAndDeliver(bytes, isText: isText, deliver) }
            }.get()
        }
        if isText, !utf8.isComplete { throw .invalidUTF8 }
        return message.withUnsafeBytes { deliver(isText ? .text($0) : .binary($0)) }
    }

    /// Inflates a complete compressed message (RFC 7692 §7.2.2), holding it to `maxMessageSize`
    /// inflated bytes, checks text for UTF-8 and delivers it.
    private mutating func inflateAndDeliver(_ bytes: UnsafeRawBufferPointer, isText: Bool, _ deliver: (WebSocketEvent) -> Bool) throws(ProtocolError) -> Bool {
        compressed = false
        // Unreachable without an inflater: the decoder rejects RSV1 unless deflate was negotiated.
        guard let inflater else { throw .reservedBitsSet }
        return try inflater.inflate(bytes, limit: maxMessageSize) { (message) throws(ProtocolError) -> Bool in
            if isText, !UTF8Validator.isValid(message) { throw .invalidUTF8 }
            return deliver(isText ? .text(message) : .binary(message))
        }
    }

    /// Delivers a complete ping, pong or close; close bodies are validated first.
    private mutating func deliverControl(_ opcode: Opcode, _ body: UnsafeRawBufferPointer, _ deliver: (WebSocketEvent) -> Bool) throws(ProtocolError) -> Bool {
        switch opcode {
        case .ping: return deliver(.ping(body))
        case .pong: return deliver(.pong(body))
        default:
            let (code, reason) = try Self.parseClose(body)
            receivedClose = true
            return deliver(.close(code: code, reason: reason))
        }
    }

    /// Close body: empty -> (nil, ""); 1 byte -> invalidClosePayload; code must be valid on the
    /// wire (§7.4); the reason must be valid UTF-8 (§5.5.1).
    static func parseClose(_ body: UnsafeRawBufferPointer) throws(ProtocolError) -> (CloseCode?, String) {
        if body.isEmpty { return (nil, "") }
        guard body.count >= 2 else { throw .invalidClosePayload }
        let code = CloseCode(rawValue: UInt16(body[0]) << 8 | UInt16(body[1]))
        guard code.isValidOnWire else { throw .invalidCloseCode(code.rawValue) }
        let reason = UnsafeRawBufferPointer(rebasing: body[2...])
        guard UTF8Validator.isValid(reason) else { throw .invalidUTF8 }
        return (code, String(decoding: reason, as: UTF8.self))
    }
}
