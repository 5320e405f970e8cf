import CLinux

/// Closure-based fd watching, timers and tick-end hooks: what the Redis connections (ClusterBus) and the
/// auth/proxy HTTP client use instead of an `EventHandler` subclass.
extension EventLoop {
    /// Starts or updates readiness interest for `fd`; `handler` gets (readable, writable) on the loop thread.
    /// Passing `readable: false, writable: false` stops watching. Errors: the `epoll_ctl` failure.
    public func watch(fd: CInt, readable: Bool, writable: Bool, handler: @escaping (Bool, Bool) -> Void) throws {
        let events = (readable ? EPOLLIN.rawValue : 0) | (writable ? EPOLLOUT.rawValue : 0)
        if let existing = watchers[fd] {
            if events == 0 {
                deregister(fd: fd)
                watchers[fd] = nil
            } else {
                existing.handler = handler
                modify(fd: fd, events: events)
            }
            return
        }
        guard events != 0 else { return }
        let w = FDWatcher(handler: handler)
        try register(fd: fd, events: events, handler: w)
        watchers[fd] = w
    }

    /// Runs `action` after `milliseconds` on the loop; call the returned closure to cancel.
    public func runAfter(milliseconds: Int, _ action: @escaping () -> Void) -> () -> Void {
        let t = schedule(afterMilliseconds: milliseconds, action)
        return { t.cancel() }
    }
}

/// Adapts a (readable, writable) closure to `EventHandler`; errors and hang-ups count as readable so the
/// owner reads and sees the failure.
final class FDWatcher: EventHandler {
    var handler: (Bool, Bool) -> Void
    init(handler: @escaping (Bool, Bool) -> Void) { self.handler = handler }
    func handleEvent(_ events: UInt32) {
        let readable = events & (EPOLLIN.rawValue | EPOLLERR.rawValue | EPOLLHUP.rawValue | EPOLLRDHUP.rawValue) != 0
        handler(readable, events & EPOLLOUT.rawValue != 0)
    }
}
