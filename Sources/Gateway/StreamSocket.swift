import CLinux
import Glibc
import Runtime

/// A non-blocking TCP socket on one loop with an outbound queue flushed by `writev` at the end of the loop
/// iteration. `EPOLLOUT` is armed only while bytes are pending. Base of WebSocket and admin connections.
///
/// Loop-confined (see `EventLoop`): `@unchecked Sendable` only so bus completions can carry a reference
/// back to the loop, where every use happens.
class StreamSocket: EventHandler, TickFlushable, @unchecked Sendable {
    /// `unowned(unsafe)`: a loop outlives every socket on it, and a checked `unowned` costs a retain and
    /// release per member per message on the fan-out path.
    unowned(unsafe) let loop: GatewayLoop
    private(set) var fd: CInt
    private var queue: [Bytes] = []
    private var head = 0
    private var headOffset = 0
    /// Bytes queued and not yet written (the high-water mark compares against this).
    private(set) var queuedBytes = 0
    private var flushScheduled = false
    private var writeArmed = false
    /// After the queue drains: send FIN (`shutdown(SHUT_WR)`) and wait for the peer's EOF.
    private var shutdownAfterFlush = false
    private(set) var writeShutDown = false
    /// Bytes read from and written to this socket (for the close log line).
    private(set) var bytesRead = 0
    private(set) var bytesWritten = 0

    init(loop: GatewayLoop, fd: CInt) {
        self.loop = loop
        self.fd = fd
    }

    var isClosed: Bool { fd < 0 }

    /// True while the kernel's send buffer is full (`EPOLLOUT` armed): the peer is not reading.
    var isWriteBlocked: Bool { writeArmed }

    /// Registers for reads. Errors close the socket.
    func register() -> Bool {
        do {
            try loop.loop.register(fd: fd, events: EPOLLIN.rawValue | EPOLLRDHUP.rawValue, handler: self)
            return true
        } catch {
            Glibc.close(fd)
            fd = -1
            return false
        }
    }

    /// Appends bytes to the outbound queue; they leave at the end of this loop iteration.
    func enqueueRaw(_ bytes: Bytes) {
        guard fd >= 0, !writeShutDown, !shutdownAfterFlush else { return }
        queue.append(bytes)
        queuedBytes += bytes.count
        loop.metrics.outboundQueueBytes.add(bytes.count)
        scheduleFlush()
    }

    /// Drops queued bytes that have not started to leave (a partially written frame stays, so the stream
    /// stays well-formed). Returns how many bytes were dropped.
    @discardableResult
    func discardUnsentQueue() -> Int {
        let keep = headOffset > 0 ? head + 1 : head
        guard keep < queue.count else { return 0 }
        var dropped = 0
        for i in keep..<queue.count { dropped += queue[i].count }
        queue.removeSubrange(keep...)
        queuedBytes -= dropped
        loop.metrics.outboundQueueBytes.add(-dropped)
        return dropped
    }

    /// Sends FIN once everything queued has been written.
    func shutdownWriteAfterFlush() {
        guard fd >= 0, !writeShutDown else { return }
        shutdownAfterFlush = true
        scheduleFlush()
    }

    private func scheduleFlush() {
        if !flushScheduled && !writeArmed {
            flushScheduled = true
            loop.loop.flushAtTickEnd(self)
        }
    }

    func flushNow() {
        flushScheduled = false
        guard fd >= 0 else { return }
        let iov = loop.iovecs
        while head < queue.count {
            var n = 0
            var total = 0
            var i = head
            while i < queue.count && n < GatewayLoop.iovecCount {
                let b = queue[i]
                let skip = i == head ? headOffset : 0
                iov[n] = iovec(iov_base: b.base + skip, iov_len: b.count - skip)
                total += b.count - skip
                n += 1
                i += 1
            }
            let written = writev(fd, iov, CInt(n))
            if written < 0 {
                let e = errno
                if e == EINTR { continue }
                if e == EAGAIN || e == EWOULDBLOCK { armWrite(true); return }
                writeFailed(errno: e)
                return
            }
            loop.metrics.bytesOut.add(written)
            bytesWritten += written
            advance(by: written)
            if written < total { armWrite(true); return }
        }
        // Drained: release the queue's storage unless it is small (busy members reuse it).
        if queue.capacity > 16 { queue = [] } else { queue.removeAll(keepingCapacity: true) }
        head = 0
        headOffset = 0
        armWrite(false)
        if shutdownAfterFlush && !writeShutDown {
            writeShutDown = true
            Glibc.shutdown(fd, CInt(SHUT_WR))
            didShutDownWrite()
        }
        didDrain()
    }

    private func advance(by written: Int) {
        var left = written
        queuedBytes -= written
        loop.metrics.outboundQueueBytes.add(-written)
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
        loop.loop.modify(fd: fd, events: EPOLLIN.rawValue | EPOLLRDHUP.rawValue | (on ? EPOLLOUT.rawValue : 0))
    }

    /// Closes the fd now (queued bytes are dropped). Idempotent.
    func closeSocket() {
        guard fd >= 0 else { return }
        loop.loop.deregister(fd: fd)
        Glibc.close(fd)
        fd = -1
        queue = []
        head = 0
        headOffset = 0
        loop.metrics.outboundQueueBytes.add(-queuedBytes)
        queuedBytes = 0
        didClose()
    }

    /// Closes with RST (SO_LINGER 0): for peers we give up on, so no TIME_WAIT or unsent data lingers.
    func resetSocket() {
        guard fd >= 0 else { return }
        var l = linger(l_onoff: 1, l_linger: 0)
        _ = setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, socklen_t(MemoryLayout<linger>.size))
        closeSocket()
    }

    // MARK: - Hooks for subclasses

    func handleEvent(_ events: UInt32) {
        if events & EPOLLOUT.rawValue != 0 {
            writeArmed = false
            flushNow()
            guard fd >= 0 else { return }
        }
        if events & (EPOLLIN.rawValue | EPOLLERR.rawValue | EPOLLHUP.rawValue | EPOLLRDHUP.rawValue) != 0 {
            readAvailable()
        }
    }

    /// Reads until `EAGAIN`, at most 4 buffers per wakeup (fairness), into the loop's shared buffer.
    func readAvailable() {
        let buf = loop.readBuffer
        var rounds = 0
        while fd >= 0 && rounds < 4 {
            let n = read(fd, buf.baseAddress!, buf.count)
            if n > 0 {
                loop.metrics.bytesIn.add(n)
                bytesRead += n
                received(UnsafeMutableRawBufferPointer(start: buf.baseAddress!, count: n))
                if n < buf.count { return }
                rounds += 1
            } else if n == 0 {
                peerClosed()
                return
            } else {
                let e = errno
                if e == EINTR { continue }
                if e == EAGAIN || e == EWOULDBLOCK { return }
                readFailed(errno: e)
                return
            }
        }
    }

    /// Bytes arrived (valid only during the call).
    func received(_ bytes: UnsafeMutableRawBufferPointer) {}
    /// The peer sent FIN.
    func peerClosed() { closeSocket() }
    func readFailed(errno: CInt) { closeSocket() }
    func writeFailed(errno: CInt) { closeSocket() }
    func didShutDownWrite() {}
    func didDrain() {}
    func didClose() {}
}
