import Synchronization

/// One permessage-deflate compressor with context takeover (RFC 7692 §7.2.2) shared by every peer
/// that receives the same sequence of messages: the members of one room on one event loop. A room
/// message is compressed once, against the room's earlier messages, and that one frame goes to each
/// member whose inflater saw exactly those messages; small chat JSON then shrinks several times
/// (the keys and names repeat from message to message) instead of ~1.3× alone.
///
/// A peer's inflater window is the output of the compressed messages it received, in order
/// (uncompressed messages do not touch it, §6.2). So each peer carries a *token*: the ``Message/token``
/// of the last compressed message it was sent, or 0 after anything else compressed (a reply, a
/// message of another room, a context-free copy). A stream message is valid for a peer only when the
/// peer's token is the message's predecessor in this stream (``Message/canInflate(after:)``), or when
/// the message is a reset point (compressed from an empty window, valid for every peer). Peers out of
/// step get a context-free copy and ask for a reset (``noteStraggler()``); the stream resets at most
/// once per `resetInterval` messages so one peer in many busy rooms cannot take the ratio from the rest.
///
/// Only for peers that did not negotiate `server_no_context_takeover` and whose
/// `server_max_window_bits` is at least ``windowBits``. Tokens are unique in the process, so tokens of
/// two streams never match. Memory: ``zlibBytes`` (about 46 KiB at window 13, memory level 4).
/// Not thread-safe: one loop uses it.
public final class SharedDeflateStream: @unchecked Sendable {
    /// One compressed message of the stream.
    public struct Message: Sendable {
        /// The whole frame, FIN and RSV1 set (§6).
        public let frame: [UInt8]
        /// What a peer's token becomes once this frame is queued to it.
        public let token: UInt64
        /// The token of the message before it in the stream (0 for a reset point).
        public let predecessor: UInt64
        /// Compressed from an empty window: any peer may inflate it.
        public var isResetPoint: Bool { predecessor == 0 }

        /// Whether a peer whose token is `peerToken` inflates this frame correctly.
        @inlinable public func canInflate(after peerToken: UInt64) -> Bool { predecessor == 0 || peerToken == predecessor }
    }

    private static let tokens = Atomic<UInt64>(1)

    /// Base-2 log of the window, 9...15: no message refers further back than 2^windowBits bytes.
    public var windowBits: Int { deflater.windowBits }
    /// Messages between two resets asked for by stragglers (≥ 1).
    public let resetInterval: Int
    private let deflater: Deflater
    private var lastToken: UInt64 = 0
    private var sinceReset = 0
    private var wantsReset = false
    /// Resets so far (the first message counts as one).
    public private(set) var resets = 0

    /// - Parameters:
    ///   - windowBits: 9...15 (default 13, an 8 KiB window: a few dozen chat messages).
    ///   - memoryLevel: zlib's memLevel, 1...9 (default 4: small messages gain nothing from more).
    ///   - resetInterval: the fewest messages between two resets asked for by stragglers (default 32).
    ///   - level: zlib's level, 1...9 (default 3: with the room's earlier messages in the window, level 6
    ///     shrinks chat JSON only ~7 % more for ~40 % more CPU, Benchmarks/deflate/wire-ratio.py and the doc).
    public init(windowBits: Int = 13, memoryLevel: Int = 4, resetInterval: Int = 32, level: Int = 3) {
        deflater = Deflater(windowBits: windowBits, memoryLevel: memoryLevel, level: level)
        self.resetInterval = max(1, resetInterval)
    }

    /// Bytes zlib holds for this stream.
    public var zlibBytes: Int { deflater.zlibBytes }

    /// A peer that is a member did not get the last message from the stream (it got a context-free
    /// copy): reset when `resetInterval` messages have passed since the last reset, so it can join.
    public func noteStraggler() { wantsReset = true }

    /// Compresses the next message of the stream, or returns nil when compression does not make it
    /// shorter (then send it uncompressed to everyone; the stream starts afresh with the next message).
    ///
    /// `opcode` is `.text` or `.binary`; the frame is unmasked (a server's, RFC 6455 §5.1).
    public func next(opcode: Opcode, payload: UnsafeRawBufferPointer) -> Message? {
        let reset = lastToken == 0 || (wantsReset && sinceReset >= resetInterval)
        if reset {
            deflater.reset()
            resets += 1
            sinceReset = 0
            wantsReset = false
            lastToken = 0
        }
        let compressed = deflater.compress(payload, keepingWindow: true)
        guard compressed.count < payload.count else {
            // The peers never see these bytes, so the window must not keep them.
            lastToken = 0
            return nil
        }
        let token = Self.tokens.wrappingAdd(1, ordering: .relaxed).oldValue
        let message = Message(
            frame: compressed.withUnsafeBytes { FrameEncoder.frame(opcode: opcode, payload: $0, compressed: true) },
            token: token, predecessor: lastToken)
        lastToken = token
        sinceReset += 1
        return message
    }
}
