import Runtime
import Synchronization

/// Short-lived records that must outlive one node and be readable by every other: today the Socket.IO
/// connection-state recovery records (docs/socketio.md, "Recovery across nodes"), keyed by the private
/// session id (`pid`) a client presents when it reconnects, possibly to another node.
///
/// Values are opaque bytes (the gateway's JSON); every record expires `ttlMilliseconds` after it was
/// written. Best effort by design: a write that cannot reach the store is dropped (the client then
/// reconnects unrecovered, `socket.recovered === false`), and a read that cannot reach it answers nil.
public protocol SessionStore: AnyObject, Sendable {
    /// Stores `value` under `key` (replacing any earlier one) for `ttlMilliseconds` (at least 1).
    func storeSession(key: String, value: [UInt8], ttlMilliseconds: Int)
    /// The value under `key`, or nil when there is none, it expired, or the store is unreachable.
    /// `completion` runs on any thread, exactly once.
    func loadSession(key: String, completion: @escaping @Sendable ([UInt8]?) -> Void)
}

/// The in-process store of a single node: a dictionary with expiry times, pruned as it is written, and
/// bounded to `maxRecords` (the oldest-expiring records are dropped first past it).
public final class LocalSessionStore: SessionStore, @unchecked Sendable {
    private struct Record {
        var value: [UInt8]
        var expiresAt: UInt64
    }
    private let records = Lock<[String: Record]>([:])
    private let maxRecords: Int
    private let clock: @Sendable () -> UInt64

    /// An empty store holding at most `maxRecords` records; `clock` is monotonic milliseconds (tests pass a fake).
    public init(maxRecords: Int = 100_000, clock: @escaping @Sendable () -> UInt64 = { monotonicMilliseconds() }) {
        self.maxRecords = max(1, maxRecords)
        self.clock = clock
    }

    /// Records currently held (expired ones included until the next write prunes them).
    public var count: Int { records.withLock { $0.count } }

    /// Stores `value` under `key` for `ttlMilliseconds`; past `maxRecords`, expired records are pruned first,
    /// then those closest to expiry.
    public func storeSession(key: String, value: [UInt8], ttlMilliseconds: Int) {
        let now = clock()
        records.withLock { r in
            r[key] = Record(value: value, expiresAt: now + UInt64(max(1, ttlMilliseconds)))
            guard r.count > maxRecords else { return }
            r = r.filter { $0.value.expiresAt > now }
            // Still full of live records: drop those closest to expiry (an O(n log n) pass, only at the cap).
            if r.count > maxRecords {
                for (k, _) in r.sorted(by: { $0.value.expiresAt < $1.value.expiresAt }).prefix(r.count - maxRecords) { r[k] = nil }
            }
        }
    }

    /// The live value under `key` (an expired one is removed), passed to `completion` before this returns.
    public func loadSession(key: String, completion: @escaping @Sendable ([UInt8]?) -> Void) {
        let now = clock()
        let value = records.withLock { r -> [UInt8]? in
            guard let rec = r[key] else { return nil }
            guard rec.expiresAt > now else {
                r[key] = nil
                return nil
            }
            return rec.value
        }
        completion(value)
    }
}
