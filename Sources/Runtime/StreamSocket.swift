import CLinux
import Glibc

/// A non-blocking stream socket on one loop with an outbound queue flushed by one vectored write at the end
/// of the loop iteration. `EPOLLOUT` is armed only while bytes are pending. The bytes go through a
/// `Transport` (plain TCP or TLS), so everything above (WebSocket and admin connections) is the same for
/// both. Subclasses override the hooks at the end (`received`, `peerClosed`, `didClose`, …).
///
/// Loop-confined (see `EventLoop`): `@unchecked Sendable` only so completions from other threads can carry
/// a reference back to the loop, where every use happens.
open class StreamSocket: EventHandler, TickFlushable, @unchecked Sendable {
    /// `unowned(unsafe)`: a context outlives every socket on it, and a checked `unowned` costs a retain and
    /// release per member per message on the fan-out path.
    public unowned(unsafe) let context: SocketContext
    public private(set) var fd: CInt
    /// Plain TCP or TLS; fixed for the socket's life.
    public let transport: any Transport
    private var queue: [Bytes] = []
    private var head = 0
    private var headOffset = 0
    /// Bytes queued and not yet written (the high-water mark compares against this).
    public private(set) var queuedBytes = 0
    private var flushScheduled = false
    private var writeArmed = false
    /// After the queue drains: send FIN (`shutdown(SHUT_WR)`) and wait for the peer's EOF.
    private var shutdownAfterFlush = false
    /// The transport's read waits for writability (`Transport.readWaitsForWritable`): `EPOLLOUT` is armed
    /// for the read's sake, and the next `EPOLLOUT` reads again.
    private var readWaitsForWritable = false
    /// The transport's write waits for readability (`Transport.writeWaitsForReadable`): flush after the next read.
    private var flushWaitsForReadable = false
    public private(set) var writeShutDown = false
    /// Bytes read from and written to this socket (for the close log line).
    public private(set) var bytesRead = 0
    public private(set) var bytesWritten = 0

    /// Wraps an accepted or connected non-blocking `fd`; call `register()` before use.
    public init(context: SocketContext, fd: CInt, transport: any Transport = PlainTransport.shared) {
        self.context = context
        self.fd = fd
        self.transport = transport
    }

    public var isClosed: Bool { fd < 0 }

    /// Gives a socket created without one (`fd` -1, e.g. a client that connects later) its descriptor.
    public func attach(fd: CInt) {
        precondition(self.fd < 0, "a StreamSocket has one descriptor")
        self.fd = fd
    }

    /// True while the kernel's send buffer is full (`EPOLLOUT` armed): the peer is not reading.
    public var isWriteBlocked: Bool { writeArmed }

    /// Registers for reads. Errors close the socket.
    public func register() -> Bool {
        do {
            try context.loop.register(fd: fd, events: EPOLLIN.rawValue | EPOLLRDHUP.rawValue, handler: self)
            return true
        } catch {
            transport.release()
            Glibc.close(fd)
            fd = -1
            return false
        }
    }

    /// Appends bytes to the outbound queue; they leave at the end of this loop iteration.
    public func enqueueRaw(_ bytes: Bytes) {
        guard fd >= 0, !writeShutDown, !shutdownAfterFlush else { return }
        queue.append(bytes)
        queuedBytes += bytes.count
        context.outboundQueueBytes.add(bytes.count)
        scheduleFlush()
    }

    /// Drops queued bytes that have not started to leave (a partially written frame stays, so the stream
    /// stays well-formed). Returns how many bytes were dropped.
    @discardableResult
    public func discardUnsentQueue() -> Int {
        // A head the transport already took part of (a TLS record waiting in the library) must be offered again.
        let keep = headOffset > 0 || (head < queue.count && transport.holdsUnreportedWrite) ? head + 1 : head
        guard keep < queue.count else { return 0 }
        var dropped = 0
        for i in keep..<queue.count { dropped += queue[i].count }
        queue.removeSubrange(keep...)
        queuedBytes -= dropped
        context.outboundQueueBytes.add(-dropped)
        return dropped
    }

    /// Sends FIN once everything queued has been written.
    public func shutdownWriteAfterFlush() {
        guard fd >= 0, !writeShutDown else { return }
        shutdownAfterFlush = true
        scheduleFlush()
    }

    private func scheduleFlush() {
        if !flushScheduled && !writeArmed {
            flushScheduled = true
            context.loop.flushAtTickEnd(self)
        }
    }

    public func flushNow() {
        flushScheduled = false
        guard fd >= 0 else { return }
        let iov = context.iovecs
        while head < queue.count {
            var n = 0
            var total = 0
            var i = head
            while i < queue.count && n < SocketContext.iovecCount {
                let b = queue[i]
                let skip = i == head ? headOffset : 0
                iov[n] = iovec(iov_base: b.base + skip, iov_len: b.count - skip)
                total += b.count - skip
                n += 1
                i += 1
            }
            let written: Int
            switch transport.write(fd: fd, iov, count: n) {
            case .done(let w): written = w
            case .wouldBlock: waitForWritable(); return
            case .failed(let e): writeFailed(errno: e); return
            case .eof: writeFailed(errno: EPIPE); return
            }
            context.bytesOut.add(written)
            bytesWritten += written
            advance(by: written)
            if written < total { armWrite(true); return }
        }
        // Drained: release the queue's storage unless it is small (busy members reuse it).
        if queue.capacity > 16 { queue = [] } else { queue.removeAll(keepingCapacity: true) }
        head = 0
        headOffset = 0
        if !readWaitsForWritable { armWrite(false) }
        if shutdownAfterFlush && !writeShutDown {
            switch transport.shutdownWrite(fd: fd) {
            case .wouldBlock: waitForWritable(); return
            case .failed(let e): writeFailed(errno: e); return
            case .done, .eof: break
            }
            writeShutDown = true
            didShutDownWrite()
        }
        didDrain()
    }

    /// After a write's `.wouldBlock`: wait for `EPOLLOUT`, or, when the transport must read first, for the
    /// next read (arming `EPOLLOUT` then would spin: the socket is writable).
    private func waitForWritable() {
        if transport.writeWaitsForReadable {
            flushWaitsForReadable = true
            if !readWaitsForWritable { armWrite(false) }
        } else {
            armWrite(true)
        }
    }

    private func advance(by written: Int) {
        var left = written
        queuedBytes -= written
        context.outboundQueueBytes.add(-written)
        while left > 0 {
            let remaining = queue[head].count - headOffset
            if left >= remaining {
                left -= remaining
                head += 1
                headOffset = 0
            } else {
                headOffset += left
                left = 0
            }
        }
        if head > 64 && head * 2 > queue.count {
            queue.removeSubrange(0..<head)
            head = 0
        }
    }

    private func armWrite(_ on: Bool) {
        guard on != writeArmed, fd >= 0 else { return }
        writeArmed = on
        context.loop.modify(fd: fd, events: EPOLLIN.rawValue | EPOLLRDHUP.rawValue | (on ? EPOLLOUT.rawValue : 0))
    }

    /// Closes the fd now (queued bytes are dropped). Idempotent.
    public func closeSocket() {
        guard fd >= 0 else { return }
        context.loop.deregisterBeforeClose(fd: fd)
        transport.release()
        Glibc.close(fd)
        fd = -1
        queue = []
        head = 0
        headOffset = 0
        readWaitsForWritable = false
        flushWaitsForReadable = false
        context.outboundQueueBytes.add(-queuedBytes)
        queuedBytes = 0
        didClose()
    }

    /// Closes with RST (SO_LINGER 0): for peers we give up on, so no TIME_WAIT or unsent data lingers.
    public func resetSocket() {
        guard fd >= 0 else { return }
        var l = linger(l_onoff: 1, l_linger: 0)
        _ = setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, socklen_t(MemoryLayout<linger>.size))
        closeSocket()
    }

    // MARK: - Readiness

    public func handleEvent(_ events: UInt32) {
        var readNow = events & (EPOLLIN.rawValue | EPOLLERR.rawValue | EPOLLHUP.rawValue | EPOLLRDHUP.rawValue) != 0
        if events & EPOLLOUT.rawValue != 0 {
            // `writeArmed` stays set until `flushNow` drains and disarms: clearing it here first made that
            // `armWrite(false)` a no-op, leaving `EPOLLOUT` in the interest set to fire on every iteration.
            if readWaitsForWritable {
                readWaitsForWritable = false
                readNow = true
            }
            if head < queue.count || (shutdownAfterFlush && !writeShutDown) {
                flushNow()
            } else {
                armWrite(false)
            }
            guard fd >= 0 else { return }
        }
        if readNow { readAvailable() }
    }

    /// Full buffers read per wakeup before the socket yields to the others on its loop (level-triggered epoll
    /// reports it again). One: a client streaming large messages then completes (and pays for parsing) one
    /// at a time between everyone else's turns, instead of four buffers' worth at once.
    public static let readsPerWakeup = 1

    /// Reads until the transport would block, at most `readsPerWakeup` buffers per wakeup (fairness), into the loop's
    /// shared buffer. A short plain read means the kernel is drained; a transport holding decrypted input
    /// (`hasBufferedInput`) is read again, since no readiness event will announce it.
    public func readAvailable() {
        readRounds()
        if flushWaitsForReadable && fd >= 0 {
            // A write that waited for input (TLS handshake step) may go on now.
            flushWaitsForReadable = false
            flushNow()
        }
    }

    private func readRounds() {
        let buf = context.readBuffer
        var rounds = 0
        while fd >= 0 && rounds < Self.readsPerWakeup {
            switch transport.read(fd: fd, into: buf) {
            case .done(let n):
                context.bytesIn.add(n)
                bytesRead += n
                received(UnsafeMutableRawBufferPointer(start: buf.baseAddress!, count: n))
                if n < buf.count && !(fd >= 0 && transport.hasBufferedInput) { return }
                rounds += 1
            case .eof:
                peerClosed()
                return
            case .wouldBlock:
                if transport.readWaitsForWritable {
                    readWaitsForWritable = true
                    armWrite(true)
                }
                return
            case .failed(let e):
                readFailed(errno: e)
                return
            }
        }
        // Fairness cut the loop short while input is still buffered inside the transport: come back next tick.
        if fd >= 0 && transport.hasBufferedInput {
            context.loop.atTickEnd { [weak self] in self?.readAvailable() }
        }
    }

    // MARK: - Hooks for subclasses

    /// Bytes arrived (valid only during the call).
    open func received(_ bytes: UnsafeMutableRawBufferPointer) {}
    /// The peer closed its side in order (FIN; TLS `close_notify`).
    open func peerClosed() { closeSocket() }
    open func readFailed(errno: CInt) { closeSocket() }
    open func writeFailed(errno: CInt) { closeSocket() }
    open func didShutDownWrite() {}
    open func didDrain() {}
    open func didClose() {}
}
