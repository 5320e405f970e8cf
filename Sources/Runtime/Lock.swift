import Glibc

/// A value guarded by a `pthread_mutex_t`: the tree's one mutual-exclusion primitive.
///
/// Same shape as `Synchronization.Mutex` (`Lock<T>(value)`, `withLock { (inout T) in … }`), so the two are
/// interchangeable at every call site. Why not `Mutex`: on Linux it is built on raw futexes, which
/// ThreadSanitizer does not intercept, so a `--sanitize=thread` build reports every access guarded by a
/// `Mutex` as a data race and real races drown among them. TSan intercepts `pthread_mutex_lock` and
/// `pthread_mutex_unlock` and sees the happens-before edges they create.
///
/// A `final class` rather than a `~Copyable` struct because a pthread mutex must not move once
/// initialised; the mutex lives in its own allocation, created in `init` and destroyed in `deinit`.
/// The value lives behind a pointer too, not in a stored property: a class property gets Swift's dynamic
/// exclusivity check on every `inout` access, which costs a runtime call per `withLock` and, for a
/// zero-sized value (`Lock<Void>`, a lock that guards an ordering, as in `Hub`), is reported by TSan as a
/// "Swift access race" even under the mutex.
/// The mutex is a default (non-recursive, non-error-checking) one: taking it twice on one thread
/// deadlocks, as with `Mutex`. Lock order between locks is each owner's documented rule (see `Hub`).
///
/// Sendable regardless of `Value`, like `Mutex`: the value enters through a `sending` parameter and
/// leaves only through `withLock`, whose body gets exclusive access.
public final class Lock<Value>: @unchecked Sendable {
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private let value: UnsafeMutablePointer<Value>

    /// Creates a lock guarding `initialValue`. Traps if `pthread_mutex_init` fails (it cannot for a
    /// default mutex on glibc, which allocates nothing).
    public init(_ initialValue: sending Value) {
        value = .allocate(capacity: 1)
        value.initialize(to: initialValue)
        mutex = .allocate(capacity: 1)
        mutex.initialize(to: pthread_mutex_t())
        let rc = pthread_mutex_init(mutex, nil)
        precondition(rc == 0, "pthread_mutex_init failed: \(rc)")
    }

    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deinitialize(count: 1)
        mutex.deallocate()
        value.deinitialize(count: 1)
        value.deallocate()
    }

    /// Runs `body` with exclusive access to the guarded value and returns its result. The lock is
    /// released when `body` returns or throws. Not reentrant: calling `withLock` on the same lock from
    /// inside `body` deadlocks.
    @inline(__always)
    public func withLock<Result, E: Error>(_ body: (inout sending Value) throws(E) -> sending Result) throws(E) -> sending Result {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body(&value.pointee)
    }

    /// Like `withLock`, but returns `nil` without waiting when another thread holds the lock
    /// (`pthread_mutex_trylock` answering `EBUSY`).
    @inline(__always)
    public func withLockIfAvailable<Result, E: Error>(_ body: (inout sending Value) throws(E) -> sending Result) throws(E) -> sending Result? {
        guard pthread_mutex_trylock(mutex) == 0 else { return nil }
        defer { pthread_mutex_unlock(mutex) }
        return try body(&value.pointee)
    }
}
