import Foundation
import Glibc
import Runtime

/// An `EventLoop` on its own thread plus what every client on it shares (it is the clients' socket context):
/// one 256 KiB read buffer, the writev scratch vector, and a PRNG for masking keys. Many `SwitchboardClient`s
/// run on one loop, non-blocking; the bench's load generator (switchboard-bench) runs its `ClientConnection`s
/// on one too.
///
/// Threading rule (the runtime's): every client on a loop, and every callback it makes, lives on the loop
/// thread. Other threads reach a client only through `run(_:)` / `sync(_:)`.
public final class ClientLoop: SocketContext, @unchecked Sendable {
    private var rng: UInt64

    /// Creates the loop (not yet running; call `start()`). Errors: `SyscallError` from epoll/eventfd.
    public init() throws(SyscallError) {
        var seed = SystemRandomNumberGenerator()
        rng = seed.next()
        super.init(loop: try EventLoop(index: 0), readBufferBytes: 256 * 1024)
    }

    /// Starts the loop thread, named `name`.
    public func start(name: String = "switchboard-client") { loop.start(name: name) }

    /// Stops the loop thread after its current iteration.
    public func stop() { loop.stop() }

    /// Runs `body` on the loop thread (fire and forget). Thread-safe.
    public func run(_ body: @escaping @Sendable () -> Void) { loop.execute(body) }

    /// Runs `body` on the loop thread and waits for its result. Never call from the loop thread.
    public func sync<T: Sendable>(_ body: @escaping @Sendable () -> T) -> T {
        let box = Lock<T?>(nil)
        let done = DispatchSemaphore(value: 0)
        loop.execute {
            let v = body()
            box.withLock { $0 = v }
            done.signal()
        }
        done.wait()
        return box.withLock { $0! }
    }

    /// A masking key (SplitMix64; RFC 6455 wants unpredictable keys from clients, which matters to the
    /// gateway only in that it must unmask them, so a seeded PRNG will do). Loop thread only.
    package func nextMask() -> UInt32 {
        rng &+= 0x9E37_79B9_7F4A_7C15
        var z = rng
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return UInt32(truncatingIfNeeded: z ^ (z >> 31))
    }
}
