/// Which end of the connection a ``WebSocketReader`` is on (RFC 6455 §5.1).
public enum WebSocketRole: Sendable {
    /// Reads client frames, which MUST be masked.
    case server
    /// Reads server frames, which MUST NOT be masked.
    case client
}

/// A complete message or control frame read by ``WebSocketReader``. Pointers are valid only
/// during the `onEvent` callback: copy what you keep.
public enum WebSocketEvent {
    /// A complete, valid UTF-8 text message; pointer valid only during the callback.
    case text(UnsafeRawBufferPointer)
    /// A complete binary message.
    case binary(UnsafeRawBufferPointer)
    /// A ping (<= 125 bytes); answer with a pong carrying the same bytes (§5.5.2).
    case ping(UnsafeRawBufferPointer)
    /// A pong (<= 125 bytes) (§5.5.3).
    case pong(UnsafeRawBufferPointer)
    /// A valid close frame: code nil when the body was empty; reason valid UTF-8 (§5.5.1).
    case close(code: CloseCode?, reason: String)
}

/// The header of one inbound data frame (text, binary or continuation), reported by
/// ``WebSocketReader/feed(_:onDataFrame:_:)`` the moment the header is complete, before any of
/// its payload is handled (RFC 6455 §5.2, §5.4).
///
/// Lets the caller count every frame against a rate limit: a message in 1,000 fragments is
/// 1,000 frames of work even though it is delivered as one event.
public struct WebSocketDataFrame: Sendable, Equatable {
    /// `.text` or `.binary` for a message's first frame, `.continuation` for the others.
    public var opcode: Opcode
    /// True on the message's last frame.
    public var fin: Bool
    /// The frame's declared payload length in bytes (§5.2).
    public var payloadLength: UInt64
    /// 1 for a message's first frame, 2 for its first continuation, and so on (at most
    /// ``WebSocketReader/maxFragments``).
    public var index: Int

    /// A frame header as the reader reports it.
    public init(opcode: Opcode, fin: Bool, payloadLength: UInt64, index: Int) {
        self.opcode = opcode
        self.fin = fin
        self.payloadLength = payloadLength
        self.index = index
    }
}

/// Reads WebSocket messages from bytes: a streaming ``FrameDecoder`` plus a ``MessageAssembler``
/// (RFC 6455 §5, §8.1). Sans-I/O: the caller feeds whatever the socket produced.
///
/// Cost per connection: about 100 bytes inline and no heap memory while idle; a partial frame
/// or fragmented message is copied into a buffer that is freed when the message completes.
/// With permessage-deflate the reader only references an ``Inflater`` (shared per loop when the
/// peer does not keep its compression context).
public struct WebSocketReader: Sendable {
    /// Which frames to expect (masked from clients, unmasked from servers).
    public let role: WebSocketRole
    /// Largest message in bytes (sum of its fragments' payloads), default 1 MiB; larger -> ``ProtocolError/messageTooLarge(limit:)``.
    public var maxMessageSize: Int { assembler.maxMessageSize }
    /// Most data frames one message may span, default 1,000; one more -> ``ProtocolError/tooManyFragments(limit:)``
    /// (close 1008). Bounds the work of a message made of many empty continuation frames.
    public var maxFragments: Int { assembler.maxFragments }

    private var decoder: FrameDecoder
    private var assembler: MessageAssembler
    private var failure: ProtocolError?
    /// Set when `onDataFrame` refused a frame: that frame was never handled, so nothing after it can be.
    private var stopped = false

    /// - Parameters:
    ///   - role: `.server` (default) reads client frames; `.client` reads server frames.
    ///   - maxMessageSize: limit in bytes for one message, checked on each frame header before
    ///     any payload is buffered (default 1 MiB). For a compressed message it applies to the
    ///     inflated size, enforced while inflating (close 1009), and the frames may declare
    ///     slightly more (DEFLATE's growth on incompressible data).
    ///   - maxFragments: most data frames (first frame plus continuations) one message may span,
    ///     default 1,000; values below 1 count as 1 (unfragmented messages only).
    ///   - deflate: set when permessage-deflate was negotiated (RFC 7692): RSV1 is then accepted on
    ///     the first frame of a text or binary message (never on control or continuation frames,
    ///     §6.1; else ``ProtocolError/reservedBitsSet``) and such messages are delivered inflated.
    ///     Pass a per-loop shared ``Inflater`` when the peer agreed to `client_no_context_takeover`,
    ///     else one of this connection's own. nil (default): every RSV bit stays reserved (§5.2).
    public init(role: WebSocketRole = .server, maxMessageSize: Int = 1 << 20, maxFragments: Int = 1000, deflate: Inflater? = nil) {
        self.role = role
        decoder = FrameDecoder(role: role, allowsCompression: deflate != nil)
        assembler = MessageAssembler(maxMessageSize: max(0, maxMessageSize), maxFragments: maxFragments, inflater: deflate)
    }

    /// True when compressed messages are accepted (an ``Inflater`` was given).
    public var acceptsCompressedMessages: Bool { decoder.allowsCompression }

    /// Feed any split of bytes. Payload is unmasked IN PLACE inside `input` (hence mutable). Events are delivered
    /// in wire order through `onEvent`; return false from it to stop processing the rest of this input (the caller
    /// does that after a close). Throws the first protocol violation. After a throw or a close event the reader
    /// must not be fed again.
    ///
    /// Once a close event has been delivered the rest of the input (and any later feed) is ignored:
    /// nothing may follow a close frame (§5.5.1). A reader that threw throws the same error again.
    /// `onEvent` must not touch this reader.
    public mutating func feed(_ input: UnsafeMutableRawBufferPointer, _ onEvent: (WebSocketEvent) -> Bool) throws(ProtocolError) {
        try feed(input, onDataFrame: { _ in true }, onEvent)
    }

    /// As ``feed(_:_:)``, also reporting every data frame header through `onDataFrame`, in wire
    /// order with the events: a frame's report comes before the event its payload completes (so an
    /// unfragmented text message gives `onDataFrame` then `.text`). Control frames are not reported
    /// there; they arrive as events. Return false from either closure to stop processing the rest of
    /// this input; when `onDataFrame` returns false, its frame is not handled and this reader ignores
    /// all later input (the caller is failing the connection, e.g. over its frame rate).
    ///
    /// A frame over the fragment limit (``maxFragments``) throws instead of being reported.
    /// Neither closure may touch this reader.
    public mutating func feed(
        _ input: UnsafeMutableRawBufferPointer, onDataFrame: (WebSocketDataFrame) -> Bool,
        _ onEvent: (WebSocketEvent) -> Bool
    ) throws(ProtocolError) {
        if let failure { throw failure }
        if assembler.receivedClose || stopped { return }
        var offset = 0
        do throws(ProtocolError) {
            while let chunk = try decoder.next(input, &offset) {
                let frameStarted = chunk.isStart && !chunk.opcode.isControl
                if frameStarted {
                    let index = try assembler.startDataFrame(chunk)
                    let frame = WebSocketDataFrame(opcode: chunk.opcode, fin: chunk.fin, payloadLength: chunk.payloadLength, index: index)
                    guard onDataFrame(frame) else {
                        stopped = true
                        return
                    }
                }
                let proceed = try assembler.handle(chunk, frameStarted: frameStarted, onEvent)
                if !proceed || assembler.receivedClose { return }
            }
        } catch {
            failure = error
            throw error
        }
    }

    /// True when no partial frame or fragmented message is buffered.
    public var isIdle: Bool { decoder.isIdle && assembler.isIdle }

    /// Heap bytes held for partial messages (0 when idle); for tests and metrics.
    var bufferedCapacity: Int { assembler.bufferedCapacity }

    /// True once a close frame has been delivered.
    public var receivedClose: Bool { assembler.receivedClose }
}
