import Glibc

/// What every `StreamSocket` on one loop shares: the loop, one read buffer (so an idle socket holds no
/// buffer of its own, uSockets' design), a scratch iovec array for `writev`, and the byte counters.
///
/// Subclassed by the owner of the loop's sockets (the gateway's `GatewayLoop`), so a socket reaches its
/// owner through the one pointer it already holds. Loop-confined except for the counters' reads.
open class SocketContext: @unchecked Sendable {
    /// The event loop every socket of this context lives on.
    public let loop: EventLoop
    /// Reused by every socket of this context for `read`; bytes are valid only during one `received` call.
    public let readBuffer: UnsafeMutableRawBufferPointer
    /// Entries in `iovecs`: at most this many queued buffers leave in one `writev`.
    public static let iovecCount = 64
    /// Scratch vector for `writev`.
    public let iovecs: UnsafeMutablePointer<iovec>
    /// Bytes read from and written to sockets of this context (single writer: this loop).
    public let bytesIn: Counter
    public let bytesOut: Counter
    /// Bytes queued and not yet written, over every socket of this context (a gauge).
    public let outboundQueueBytes: Counter

    /// - Parameters: `readBufferBytes`: size of the shared read buffer (default 64 KiB); the counters are
    ///   the owner's, so its metrics exporter reads them where it reads everything else.
    public init(
        loop: EventLoop, readBufferBytes: Int = 64 * 1024, bytesIn: Counter = Counter(), bytesOut: Counter = Counter(),
        outboundQueueBytes: Counter = Counter()
    ) {
        self.loop = loop
        self.readBuffer = UnsafeMutableRawBufferPointer.allocate(byteCount: readBufferBytes, alignment: 16)
        self.iovecs = UnsafeMutablePointer<iovec>.allocate(capacity: SocketContext.iovecCount)
        self.bytesIn = bytesIn
        self.bytesOut = bytesOut
        self.outboundQueueBytes = outboundQueueBytes
    }

    deinit {
        readBuffer.deallocate()
        iovecs.deallocate()
    }
}
