import Foundation
import Glibc
import Runtime

/// Polls `condition` every 10 ms for up to `seconds`; true as soon as it holds (checked once more at the end).
public func wait(_ seconds: Double, _ condition: () -> Bool) -> Bool {
    let deadline = Date().addingTimeInterval(seconds)
    while Date() < deadline {
        if condition() { return true }
        usleep(10_000)
    }
    return condition()
}

/// Runs `body` with a completion and waits up to `timeout` seconds for its value; nil when it never came.
public func sync<T: Sendable>(timeout: Int = 5, _ body: (@escaping @Sendable (T) -> Void) -> Void) -> T? {
    let box = Lock<T?>(nil)
    let done = DispatchSemaphore(value: 0)
    body { v in
        box.withLock { $0 = v }
        done.signal()
    }
    guard done.wait(timeout: .now() + .seconds(timeout)) == .success else { return nil }
    return box.withLock { $0 }
}

/// Stops a test's event loop and only then lets go of the objects that own its sockets' context (buses,
/// routers): sockets reference their context unowned, so a close task the loop runs after the owner was
/// freed would touch freed memory. Use `let keeper = LoopKeeper(loop); defer { keeper.stop() }` right after
/// starting the loop, then `keeper.keep(bus)`: cleanups run in reverse order, so an object declared after
/// a plain `defer { loop.stopAndWait(…) }` is released before that defer runs.
public final class LoopKeeper: @unchecked Sendable {
    private let loop: EventLoop
    private var objects: [AnyObject] = []

    public init(_ loop: EventLoop) { self.loop = loop }

    /// Holds `objects` until `stop()` (test thread only).
    public func keep(_ objects: AnyObject...) { self.objects += objects }

    /// Stops the loop (2 s at most), then releases what `keep` held.
    public func stop() {
        _ = loop.stopAndWait(timeoutMilliseconds: 2000)
        objects = []
    }
}
