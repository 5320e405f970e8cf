import CLinux
import Glibc

/// What one transport call did.
public enum TransportResult: Equatable, Sendable {
    /// `n` bytes were read into the buffer, or taken from the vector (`n > 0`; a write may take fewer than offered).
    case done(Int)
    /// Nothing now: wait for readiness (`StreamSocket` arms `EPOLLOUT` for writes, waits for `EPOLLIN` for reads).
    case wouldBlock
    /// The peer closed its sending side in order (TCP FIN; for TLS, `close_notify` or FIN).
    case eof
    /// The stream is broken: an errno (plain) or an `EPROTO`-style code (TLS). The socket closes.
    case failed(CInt)
}

/// The byte stream under a socket: plain TCP, or TLS on top of it (a second implementation of this protocol,
/// never a branch inside the connection). uSockets and SwiftNIO draw the same line.
///
/// Every call is made on the owning loop's thread, with the socket's fd; a transport may be shared by many
/// sockets when it keeps no per-connection state (`PlainTransport.shared`).
public protocol Transport: AnyObject {
    /// Reads up to `buffer.count` bytes of application data. `.eof` on an orderly close by the peer.
    func read(fd: CInt, into buffer: UnsafeMutableRawBufferPointer) -> TransportResult
    /// Writes from `iov[0..<count]` in order; `.done(n)` says how many bytes of the vector were taken.
    func write(fd: CInt, _ iov: UnsafeMutablePointer<iovec>, count: Int) -> TransportResult
    /// True when the transport holds input already read from the fd but not yet returned by `read` (TLS
    /// records decrypted in advance): the socket reads again without waiting for `EPOLLIN`, which would
    /// never come for bytes that are no longer in the kernel.
    var hasBufferedInput: Bool { get }
    /// Ends the sending side in order once everything queued is written: TLS sends `close_notify`, then
    /// both send TCP FIN (`shutdown(SHUT_WR)`). `.wouldBlock` means call again when writable.
    func shutdownWrite(fd: CInt) -> TransportResult
    /// Frees what the transport holds for this connection (not the fd, which the socket closes right after).
    /// Nothing may be written to the fd after this (a reused fd must never receive our bytes).
    func release()
    /// True when the last `read` returned `.wouldBlock` because the transport must *write* first (a TLS
    /// handshake flight or a KeyUpdate answer that did not fit the kernel's send buffer): the socket arms
    /// `EPOLLOUT` and reads again when writable. Always false for plain TCP (the default).
    var readWaitsForWritable: Bool { get }
    /// True when the last `write` or `shutdownWrite` returned `.wouldBlock` because the transport must *read*
    /// first (TLS: `SSL_write` during a handshake): the socket must not arm `EPOLLOUT`, which would fire at
    /// once and spin on a level-triggered loop, and flushes again after its next read. False for plain TCP.
    var writeWaitsForReadable: Bool { get }
    /// True when the transport has taken part of the queue's head buffer internally without reporting it
    /// (TLS: a record encrypted from it is still waiting in the library after `.wouldBlock`): the socket must
    /// offer the same head bytes again and must not discard that buffer. False for plain TCP.
    var holdsUnreportedWrite: Bool { get }
}

extension Transport {
    public var readWaitsForWritable: Bool { false }
    public var writeWaitsForReadable: Bool { false }
    public var holdsUnreportedWrite: Bool { false }
}

/// Plain TCP: `read(2)`, `writev(2)`, `shutdown(2)`. Stateless, so one instance serves every socket and a
/// plain connection pays no allocation for its transport.
public final class PlainTransport: Transport, @unchecked Sendable {
    /// The instance every plain socket shares.
    public static let shared = PlainTransport()

    public func read(fd: CInt, into buffer: UnsafeMutableRawBufferPointer) -> TransportResult {
        while true {
            let n = Glibc.read(fd, buffer.baseAddress!, buffer.count)
            if n > 0 { return .done(n) }
            if n == 0 { return .eof }
            let e = errno
            if e == EINTR { continue }
            if e == EAGAIN || e == EWOULDBLOCK { return .wouldBlock }
            return .failed(e)
        }
    }

    public func write(fd: CInt, _ iov: UnsafeMutablePointer<iovec>, count: Int) -> TransportResult {
        while true {
            let n = writev(fd, iov, CInt(count))
            if n >= 0 { return .done(n) }
            let e = errno
            if e == EINTR { continue }
            if e == EAGAIN || e == EWOULDBLOCK { return .wouldBlock }
            return .failed(e)
        }
    }

    public var hasBufferedInput: Bool { false }

    public func shutdownWrite(fd: CInt) -> TransportResult {
        Glibc.shutdown(fd, CInt(SHUT_WR))
        return .done(0)
    }

    public func release() {}
}
