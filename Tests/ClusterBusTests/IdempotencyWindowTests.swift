import ClusterBus
import Testing

/// The in-memory idempotency table behind `LocalRooms`: window expiry, per-room keys, bounded size.
@Suite struct IdempotencyWindowTests {
    let a = StreamOffset(epoch: "e", milliseconds: 1, sequence: 1)
    let b = StreamOffset(epoch: "e", milliseconds: 1, sequence: 2)

    @Test func aKeyAnswersItsFirstOffsetUntilTheWindowEnds() {
        var w = IdempotencyWindow(windowMilliseconds: 100)
        #expect(w.lookup(room: "r", key: "k", now: 0) == nil)
        w.store(room: "r", key: "k", offset: a, now: 0)
        w.store(room: "r", key: "k", offset: b, now: 10)
        #expect(w.lookup(room: "r", key: "k", now: 99) == a)
        #expect(w.lookup(room: "other", key: "k", now: 50) == nil, "keys are per room")
        #expect(w.lookup(room: "r", key: "k", now: 100) == nil)
        #expect(w.count == 0)
        w.store(room: "r", key: "k", offset: b, now: 120)
        #expect(w.lookup(room: "r", key: "k", now: 121) == b, "after the window the key is new again")
    }

    @Test func theOldestKeysGoFirstPastCapacity() {
        var w = IdempotencyWindow(windowMilliseconds: 1_000_000, capacity: 3)
        for i in 0..<5 { w.store(room: "r", key: "\(i)", offset: a, now: UInt64(i)) }
        #expect(w.count == 3)
        #expect(w.lookup(room: "r", key: "0", now: 10) == nil && w.lookup(room: "r", key: "1", now: 10) == nil)
        #expect(w.lookup(room: "r", key: "4", now: 10) == a)
    }

    @Test func aZeroWindowStoresNothing() {
        var w = IdempotencyWindow(windowMilliseconds: 0)
        w.store(room: "r", key: "k", offset: a, now: 0)
        #expect(w.lookup(room: "r", key: "k", now: 0) == nil && w.count == 0)
    }

    @Test func manyKeysStayBoundedAndCorrect() {
        var w = IdempotencyWindow(windowMilliseconds: 50, capacity: 1000)
        for i in 0..<20_000 {
            w.store(room: "r", key: "\(i)", offset: a, now: UInt64(i))
            #expect(w.count <= 1000)
        }
        #expect(w.lookup(room: "r", key: "19999", now: 20_000) == a)
        #expect(w.lookup(room: "r", key: "19900", now: 20_000) == nil)
    }
}
