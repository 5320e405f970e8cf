/// The event-loop services a bus implementation needs, provided by the gateway's `EventLoop` (the
/// dependency points Gateway → ClusterBus, so the bus sees the loop through this protocol).
///
/// Threading: everything except `execute` must be called on the loop's own thread.
public protocol BusEventLoop: AnyObject, Sendable {
    /// Runs `task` on the loop thread (thread-safe, FIFO).
    func execute(_ task: @escaping @Sendable () -> Void)
    /// True on the loop's own thread.
    var inLoop: Bool { get }
    /// Starts or updates readiness interest for `fd`; `handler` gets (readable, writable) on the loop thread.
    /// Passing `readable: false, writable: false` stops watching. Errors: the `epoll_ctl` failure.
    func watch(fd: CInt, readable: Bool, writable: Bool, handler: @escaping (_ readable: Bool, _ writable: Bool) -> Void) throws
    /// Runs `action` after `milliseconds` on the loop; call the returned closure to cancel.
    func runAfter(milliseconds: Int, _ action: @escaping () -> Void) -> () -> Void
    /// Runs `hook` once at the end of the current loop iteration (batching, e.g. SUBSCRIBE per tick).
    func atTickEnd(_ hook: @escaping () -> Void)
}
