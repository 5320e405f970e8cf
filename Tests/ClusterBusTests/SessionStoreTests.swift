import ClusterBus
import Synchronization
import Testing

/// `LocalSessionStore`: records expire after their TTL and the store stays within its record cap. (The
/// Redis store is exercised end to end by SocketIOClusterTests: a record written by one node, read by another.)
@Suite struct SessionStoreTests {
    final class FakeClock: Sendable {
        let now = Atomic<UInt64>(1000)
        func advance(_ ms: UInt64) { now.add(ms, ordering: .relaxed) }
    }

    func load(_ store: LocalSessionStore, _ key: String) -> [UInt8]? {
        let got = Mutex<[UInt8]??>(nil)
        store.loadSession(key: key) { v in got.withLock { $0 = .some(v) } }
        return got.withLock { $0 } ?? nil
    }

    @Test func recordsExpireAfterTheirTTL() {
        let clock = FakeClock()
        let store = LocalSessionStore(clock: { clock.now.load(ordering: .relaxed) })
        store.storeSession(key: "pid-1", value: [1, 2], ttlMilliseconds: 500)
        #expect(load(store, "pid-1") == [1, 2])
        #expect(load(store, "pid-2") == nil)
        store.storeSession(key: "pid-1", value: [3], ttlMilliseconds: 500)  // replaced, TTL restarted
        clock.advance(499)
        #expect(load(store, "pid-1") == [3])
        clock.advance(1)
        #expect(load(store, "pid-1") == nil)
        #expect(store.count == 0)
    }

    @Test func theStoreKeepsAtMostItsCap() {
        let clock = FakeClock()
        let store = LocalSessionStore(maxRecords: 3, clock: { clock.now.load(ordering: .relaxed) })
        for i in 0..<3 { store.storeSession(key: "k\(i)", value: [UInt8(i)], ttlMilliseconds: 1000 + i) }
        store.storeSession(key: "k3", value: [3], ttlMilliseconds: 5000)
        #expect(store.count == 3)
        #expect(load(store, "k0") == nil)  // the one closest to expiry went first
        #expect(load(store, "k3") == [3] && load(store, "k2") == [2])
        // Expired records are pruned before anything live is dropped.
        clock.advance(1500)
        store.storeSession(key: "k4", value: [4], ttlMilliseconds: 1000)
        #expect(load(store, "k3") == [3] && load(store, "k4") == [4])
    }
}
