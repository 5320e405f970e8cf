import CLinux
import Glibc
import Runtime

/// Accepts connections on one loop's listening socket (each loop has its own `SO_REUSEPORT` socket) and
/// hands each accepted fd to `onAccept` on the same loop. Accepts at most 64 per wakeup for fairness.
final class Listener: EventHandler {
    let fd: CInt
    private unowned let loop: EventLoop
    private let onAccept: (CInt) -> Void
    private var closed = false

    init(fd: CInt, loop: EventLoop, onAccept: @escaping (CInt) -> Void) {
        self.fd = fd
        self.loop = loop
        self.onAccept = onAccept
    }

    func start() throws(SyscallError) {
        try loop.register(fd: fd, events: EPOLLIN.rawValue, handler: self)
    }

    func handleEvent(_ events: UInt32) {
        for _ in 0..<64 {
            let c = clinux_accept4(fd, CInt(SOCK_NONBLOCK.rawValue) | CInt(SOCK_CLOEXEC.rawValue))
            if c < 0 {
                let e = errno
                if e == EINTR || e == ECONNABORTED { continue }
                if e == EMFILE || e == ENFILE || e == ENOBUFS || e == ENOMEM {
                    // Out of fds: level-triggered epoll would spin on the pending connection. Pause accepting.
                    pause(milliseconds: 100)
                }
                return
            }
            onAccept(c)
        }
    }

    /// Number of times accepting paused for lack of file descriptors.
    private(set) var pauses = 0

    private func pause(milliseconds: Int) {
        guard !closed else { return }
        pauses += 1
        loop.modify(fd: fd, events: 0)
        loop.schedule(afterMilliseconds: milliseconds) { [weak self] in
            guard let self, !self.closed else { return }
            self.loop.modify(fd: self.fd, events: EPOLLIN.rawValue)
        }
    }

    /// Stops accepting: deregisters and closes the listening socket. Idempotent.
    func close() {
        guard !closed else { return }
        closed = true
        loop.deregister(fd: fd)
        Glibc.close(fd)
    }
}
