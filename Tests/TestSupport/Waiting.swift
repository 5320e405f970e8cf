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
