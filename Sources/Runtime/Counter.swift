import Synchronization

/// A counter with one writer (one event loop: a gateway loop or the bus loop) and any
/// number of readers (the `/metrics` scrape): a relaxed load and store, no lock and no read-modify-write on
/// a shared cache line, so hot paths may count every message.
public final class Counter: Sendable {
    private let value = Atomic<Int>(0)
    public init() {}
    /// Owning thread only.
    @inline(__always)
    public func add(_ n: Int = 1) { value.store(value.load(ordering: .relaxed) &+ n, ordering: .relaxed) }
    /// Owning thread only.
    @inline(__always)
    public func set(_ n: Int) { value.store(n, ordering: .relaxed) }
    /// Any thread.
    public func load() -> Int { value.load(ordering: .relaxed) }
}
