import ClusterBus
import Runtime
import Testing

@Suite struct RedisCanaryTests {
    @Test func canaryBackInTimeIsHealthyAndRecordsTheRoundTrip() {
        var c = RedisCanary(timeoutMilliseconds: 1000)
        #expect(c.verdict(now: 0) == .healthy)
        let s = c.send(now: 100)
        #expect(c.verdict(now: 1100) == .healthy, "exactly at the timeout is still in time")
        let r1 = c.received(sequence: s, now: 103)
        #expect(r1)
        #expect(c.lastRoundTripMilliseconds == 3 && c.outstanding == nil)
        #expect(c.verdict(now: 50_000) == .healthy)
    }

    @Test func missingCanaryIsLate() {
        var c = RedisCanary(timeoutMilliseconds: 1000)
        _ = c.send(now: 100)
        #expect(c.verdict(now: 1101) == .late(milliseconds: 1001))
    }

    @Test func staleOrForeignCanariesDoNotCount() {
        var c = RedisCanary(timeoutMilliseconds: 500)
        let first = c.send(now: 0)
        let second = c.send(now: 10)
        let r2 = c.received(sequence: first, now: 11)
        #expect(!r2)
        let r3 = c.received(sequence: 999, now: 11)
        #expect(!r3)
        #expect(c.verdict(now: 600) == .late(milliseconds: 590))
        let r4 = c.received(sequence: second, now: 601)
        #expect(r4)
        c.reset()
        #expect(c.outstanding == nil)
    }
}
