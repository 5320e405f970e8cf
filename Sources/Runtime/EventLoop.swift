import CLinux
import Foundation
import Glibc
import Synchronization

/// Receives readiness events for one registered file descriptor. Called on the owning loop's thread only.
public protocol EventHandler: AnyObject {
    /// `events` is the epoll mask (`EPOLLIN`, `EPOLLOUT`, `EPOLLERR`, `EPOLLHUP`, `EPOLLRDHUP`).
    func handleEvent(_ events: UInt32)
}

/// Something that wants `flushNow()` called once at the end of the current loop iteration
/// (the per-loop cork: many frames queued in one iteration leave in one `writev`).
public protocol TickFlushable: AnyObject {
    func flushNow()
}

/// One event loop: a thread with its own epoll instance, an eventfd for cross-thread tasks and a timer wheel.
///
/// Threading rule: everything registered with a loop (handlers, timers, connections) is confined to the
/// loop's thread; only `execute(_:)`, `wakeUp()` and the read-only health fields may be used from other
/// threads. Debug builds check this with `assertInLoop()`.
///
/// Level-triggered epoll; each registration's epoll data carries the fd and a generation so an event for a
/// closed fd that was reused within the same `epoll_wait` batch is dropped (NIO's approach).
public final class EventLoop: @unchecked Sendable {
    /// 0-based index of this loop in the node (used in logs, metrics and the `hello` frame).
    public let index: Int
    private let epfd: CInt
    private let wakeFD: CInt
    private let tasks = Lock<[@Sendable () -> Void]>([])
    private var handlers: ContiguousArray<(handler: EventHandler?, generation: UInt32)> = []
    private var nextGeneration: UInt32 = 1
    private var wheel: TimerWheel
    private var flushList: [TickFlushable] = []
    private var flushSpare: [TickFlushable] = []
    private var dueTimers: [(target: TimerTarget, generation: UInt32)] = []
    private var tickEndHooks: [() -> Void] = []
    private var threadID: pthread_t?
    /// Closure-based watchers (`EventLoop.watch`), by fd.
    var watchers: [CInt: FDWatcher] = [:]
    private let stopped = Atomic<Bool>(false)
    /// Signalled once when a thread started by `start(name:)` leaves `run()`.
    private let finished = DispatchSemaphore(value: 0)

    /// Cached monotonic time (ms) of the current iteration: cheap for deadlines set in handlers.
    public private(set) var now: UInt64
    /// Iteration heartbeat for liveness: monotonic ms of the last time the loop was awake, and whether it is
    /// parked in `epoll_wait` (a parked loop is alive however old its heartbeat).
    public let lastAwakeMilliseconds = Atomic<UInt64>(0)
    public let parked = Atomic<Bool>(false)
    /// Events of the last `epoll_wait` batch not handled because the iteration's budget ran out: (epoll data
    /// tag, mask), handled first in the next iteration (the generation check drops any that went stale).
    private var deferredEvents: [(UInt64, UInt32)] = []
    /// The events of the iteration being handled (kept to reuse its storage).
    private var batch: [(UInt64, UInt32)] = []
    /// How long one iteration may spend handling readiness before the rest of the batch's input is deferred
    /// (2 ms): other connections' messages, timers and `/health` then wait about this long plus one handler.
    public var iterationBudgetNanoseconds: UInt64 = 2_000_000
    /// Maximum events taken per `epoll_wait`.
    private let maxEvents = 256

    /// Creates the epoll instance and eventfd. Errors: `SyscallError` from `epoll_create1` / `eventfd`.
    public init(index: Int) throws(SyscallError) {
        self.index = index
        self.epfd = try syscall("epoll_create1") { epoll_create1(CInt(EPOLL_CLOEXEC)) }
        self.wakeFD = try syscall("eventfd") { eventfd(0, CInt(EFD_NONBLOCK) | CInt(EFD_CLOEXEC)) }
        self.now = monotonicMilliseconds()
        self.wheel = TimerWheel(now: now)
        var ev = clinux_epoll_event(EPOLLIN.rawValue, UInt64(UInt32(bitPattern: wakeFD)))
        _ = try syscall("epoll_ctl") { epoll_ctl(epfd, EPOLL_CTL_ADD, wakeFD, &ev) }
    }

    deinit {
        close(epfd)
        close(wakeFD)
    }

    // MARK: - Cross-thread

    /// Runs `task` on the loop thread, after the current iteration's I/O. Thread-safe; FIFO per caller.
    /// Wakes the loop through the eventfd only when the queue was empty (saves a syscall on hot paths).
    public func execute(_ task: @escaping @Sendable () -> Void) {
        let wasEmpty = tasks.withLock { q in
            q.append(task)
            return q.count == 1
        }
        if wasEmpty && !inLoop { wakeUp() }
    }

    /// Interrupts `epoll_wait`.
    public func wakeUp() {
        var one: UInt64 = 1
        _ = write(wakeFD, &one, 8)
    }

    /// True on the loop's own thread.
    public var inLoop: Bool {
        guard let t = threadID else { return false }
        return pthread_equal(t, pthread_self()) != 0
    }

    /// Debug-build check of the threading rule.
    @inline(__always)
    public func assertInLoop(file: StaticString = #fileID, line: UInt = #line) {
        assert(threadID == nil || inLoop, "called off the event loop thread", file: file, line: line)
    }

    // MARK: - Registration (loop thread)

    /// Registers `fd` for `events` (e.g. `EPOLLIN.rawValue`). The handler is held strongly until `deregister`.
    public func register(fd: CInt, events: UInt32, handler: EventHandler) throws(SyscallError) {
        assertInLoop()
        let i = Int(fd)
        if i >= handlers.count {
            handlers.append(contentsOf: repeatElement((handler: nil, generation: UInt32(0)), count: max(i + 1 - handlers.count, handlers.count)))
        }
        let gen = nextGeneration
        nextGeneration &+= 1
        if nextGeneration == 0 { nextGeneration = 1 }
        handlers[i] = (handler, gen)
        var ev = clinux_epoll_event(events, Self.tag(fd: fd, generation: gen))
        do {
            _ = try syscall("epoll_ctl(ADD)") { epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) }
        } catch {
            handlers[i] = (nil, 0)
            throw error
        }
    }

    /// Changes the interest set of a registered fd.
    public func modify(fd: CInt, events: UInt32) {
        assertInLoop()
        let gen = handlers[Int(fd)].generation
        var ev = clinux_epoll_event(events, Self.tag(fd: fd, generation: gen))
        _ = epoll_ctl(epfd, EPOLL_CTL_MOD, fd, &ev)
    }

    /// Removes `fd` from epoll and drops the handler. Call before `close(fd)`.
    public func deregister(fd: CInt) {
        assertInLoop()
        var ev = epoll_event()
        _ = epoll_ctl(epfd, EPOLL_CTL_DEL, fd, &ev)
        if Int(fd) < handlers.count { handlers[Int(fd)] = (nil, 0) }
    }

    /// Drops `fd`'s handler without `epoll_ctl(DEL)`; the caller closes `fd` right after, which removes it
    /// from the epoll set (epoll(7): a registration goes away when the last descriptor of its open file is
    /// closed). Saves one syscall per connection. Only for descriptors never duplicated (`dup`, `fork`
    /// without `exec`): a copy would keep the registration, and level-triggered events for it would then
    /// be dropped by the generation check on every iteration. Every socket here is `SOCK_CLOEXEC` and never
    /// duplicated.
    public func deregisterBeforeClose(fd: CInt) {
        assertInLoop()
        if Int(fd) < handlers.count { handlers[Int(fd)] = (nil, 0) }
    }

    @inline(__always)
    private static func tag(fd: CInt, generation: UInt32) -> UInt64 {
        UInt64(UInt32(bitPattern: fd)) | (UInt64(generation) << 32)
    }

    // MARK: - Timers (loop thread)

    /// Arms a generation-checked timer (see `TimerTarget`). `deadline` is monotonic ms.
    public func schedule(_ target: TimerTarget, generation: UInt32, deadline: UInt64) {
        assertInLoop()
        wheel.schedule(target, generation: generation, deadline: deadline)
    }

    /// Runs `action` on this loop after `milliseconds`; returns a handle whose `cancel()` stops it.
    @discardableResult
    public func schedule(afterMilliseconds milliseconds: Int, _ action: @escaping () -> Void) -> ClosureTimer {
        assertInLoop()
        let t = ClosureTimer(action)
        wheel.schedule(t, generation: t.timerGeneration, deadline: now + UInt64(max(0, milliseconds)))
        return t
    }

    // MARK: - Batching (loop thread)

    /// Queues `target.flushNow()` for the end of this iteration. The caller keeps a flag so it is added once.
    public func flushAtTickEnd(_ target: TickFlushable) {
        flushList.append(target)
    }

    /// Runs `hook` once at the end of this iteration (e.g. batching Redis SUBSCRIBE commands).
    public func atTickEnd(_ hook: @escaping () -> Void) {
        assertInLoop()
        tickEndHooks.append(hook)
    }

    // MARK: - Running

    /// Stops the loop after its current iteration (thread-safe).
    public func stop() {
        stopped.store(true, ordering: .relaxed)
        wakeUp()
    }

    /// Stops the loop and waits up to `timeoutMilliseconds` for its thread (started by `start(name:)`) to
    /// leave the loop. Returns false on timeout. Call from another thread: before `exit()`, so no loop is
    /// inside OpenSSL or a handler while the process tears down.
    @discardableResult
    public func stopAndWait(timeoutMilliseconds: Int) -> Bool {
        stop()
        return finished.wait(timeout: .now() + .milliseconds(timeoutMilliseconds)) == .success
    }

    /// Starts the loop on a new thread; returns once the thread runs.
    public func start(name: String) {
        let ready = DispatchSemaphore(value: 0)
        let thread = Thread { [self] in
            self.threadID = pthread_self()
            ready.signal()
            self.run()
            self.finished.signal()
        }
        thread.name = name
        thread.stackSize = 1 << 20
        thread.start()
        ready.wait()
    }

    /// Runs the loop on the calling thread until `stop()`.
    public func runOnCurrentThread() {
        threadID = pthread_self()
        run()
    }

    private func run() {
        let events = UnsafeMutablePointer<epoll_event>.allocate(capacity: maxEvents)
        defer { events.deallocate() }
        while !stopped.load(ordering: .relaxed) {
            var timeout: CInt = -1
            if !deferredEvents.isEmpty || !flushList.isEmpty || !tickEndHooks.isEmpty || tasks.withLock({ !$0.isEmpty }) {
                timeout = 0
            } else if let ms = wheel.millisecondsUntilNext(now: monotonicMilliseconds()) {
                timeout = CInt(min(ms, 60_000))
            }
            if timeout != 0 { parked.store(true, ordering: .relaxed) }
            let n = epoll_wait(epfd, events, CInt(maxEvents), timeout)
            parked.store(false, ordering: .relaxed)
            now = monotonicMilliseconds()
            lastAwakeMilliseconds.store(now, ordering: .relaxed)
            if n < 0 {
                if errno == EINTR { continue }
                fatalError("epoll_wait: errno \(errno)")
            }
            // Events cut off by the last iteration's budget go first (no fd waits behind busy ones twice).
            let started = monotonicNanoseconds()
            swap(&batch, &deferredEvents)
            for i in 0..<Int(n) { batch.append((clinux_epoll_data(events + i), clinux_epoll_events(events + i))) }
            defer { batch.removeAll(keepingCapacity: true) }
            var overBudget = false
            for (tag, mask) in batch {
                // Past the budget, input waits for the next iteration; output (EPOLLOUT: a peer's window opened)
                // is never deferred, since draining queues is what frees memory and ends latency.
                if overBudget && mask & EPOLLOUT.rawValue == 0 {
                    deferredEvents.append((tag, mask))
                    continue
                }
                let fd = CInt(bitPattern: UInt32(truncatingIfNeeded: tag))
                if fd == wakeFD {
                    var v: UInt64 = 0
                    _ = read(wakeFD, &v, 8)
                    continue
                }
                let idx = Int(fd)
                guard idx < handlers.count else { continue }
                let entry = handlers[idx]
                guard let h = entry.handler, entry.generation == UInt32(truncatingIfNeeded: tag >> 32) else { continue }
                h.handleEvent(mask)
                // The per-iteration budget: past it, the rest of the batch's input waits for the next iteration
                // (after timers, tasks and the flush), so no burst of expensive input holds the loop for long.
                if !overBudget && monotonicNanoseconds() &- started > iterationBudgetNanoseconds { overBudget = true }
            }
            runTasks()
            wheel.collectExpired(now: now, into: &dueTimers)
            for (t, g) in dueTimers where t.timerGeneration == g { t.timerFired(now: now) }
            dueTimers.removeAll(keepingCapacity: true)
            runTickEnd()
        }
        runTasks()
    }

    private func runTasks() {
        // Bounded: tasks queued by these tasks run in the next iteration, after I/O (fairness).
        let batch = tasks.withLock { q -> [@Sendable () -> Void] in
            let b = q
            q.removeAll(keepingCapacity: true)
            return b
        }
        for t in batch { t() }
    }

    private func runTickEnd() {
        while !flushList.isEmpty || !tickEndHooks.isEmpty {
            if !tickEndHooks.isEmpty {
                let hooks = tickEndHooks
                tickEndHooks = []
                for h in hooks { h() }
            }
            if !flushList.isEmpty {
                // Swap with a spare array so neither buffer is reallocated each iteration.
                swap(&flushList, &flushSpare)
                for f in flushSpare { f.flushNow() }
                flushSpare.removeAll(keepingCapacity: true)
            }
        }
    }
}
