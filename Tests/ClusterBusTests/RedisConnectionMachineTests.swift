import ClusterBus
import Runtime
import Testing

/// The connection state machine driven with a fake clock and injected jitter: no sockets.
@Suite struct RedisConnectionMachineTests {
    func machine(timeout: Int = 3000) -> RedisConnectionMachine {
        RedisConnectionMachine(backoff: RedisBackoff(baseMilliseconds: 100, capMilliseconds: 1000), connectTimeoutMilliseconds: timeout)
    }

    @Test func connectsThenBecomesReady() {
        var m = machine()
        let r1 = m.start(now: 1000)
        #expect(r1 == .connect(isReconnect: false))
        #expect(m.state == .connecting(deadline: 4000))
        #expect(m.nextDeadline == 4000)
        let r2 = m.handshakeCompleted(now: 1005)
        #expect(r2 == .becameReady)
        #expect(m.state == .ready(since: 1005))
        #expect(m.nextDeadline == nil && m.isReady)
        let r3 = m.start(now: 1006)
        #expect(r3 == .none, "start is once")
    }

    @Test func lostConnectionBacksOffWithJitterThenReconnects() {
        var m = machine()
        _ = m.start(now: 0)
        _ = m.handshakeCompleted(now: 10)
        let r4 = m.failed(now: 500, jitter: 0.5)
        #expect(r4 == .retry(delayMilliseconds: 50, failures: 1, wasReady: true))
        #expect(m.state == .backingOff(until: 550))
        let r5 = m.timerFired(now: 549, jitter: 0)
        #expect(r5 == .none, "not before the deadline")
        let r6 = m.timerFired(now: 550, jitter: 0)
        #expect(r6 == .connect(isReconnect: true))
        #expect(m.attempts == 2)
    }

    @Test func consecutiveFailuresGrowTheCeilingAndReadyResetsIt() {
        var m = machine()
        var now: UInt64 = 0
        _ = m.start(now: now)
        var delays: [Int] = []
        for _ in 0..<6 {
            now += 5
            guard case .retry(let d, _, let wasReady) = m.failed(now: now, jitter: 0.999_999) else {
                Issue.record("expected a retry")
                return
            }
            #expect(!wasReady)
            delays.append(d)
            now += UInt64(d)
            let r7 = m.timerFired(now: now, jitter: 0)
            #expect(r7 == .connect(isReconnect: true))
        }
        #expect(delays == [99, 199, 399, 799, 999, 999])
        _ = m.handshakeCompleted(now: now)
        #expect(m.failures == 0)
        let r8 = m.failed(now: now + 1, jitter: 0.999_999)
        #expect(r8 == .retry(delayMilliseconds: 99, failures: 1, wasReady: true))
    }

    @Test func connectTimeoutCountsAsAFailure() {
        var m = machine(timeout: 200)
        _ = m.start(now: 0)
        let r9 = m.timerFired(now: 199, jitter: 0.5)
        #expect(r9 == .none)
        let r10 = m.timerFired(now: 200, jitter: 0.5)
        #expect(r10 == .retry(delayMilliseconds: 50, failures: 1, wasReady: false))
        let r11 = m.handshakeCompleted(now: 201)
        #expect(r11 == .none, "a late handshake of the abandoned attempt is ignored")
    }

    @Test func failureReportsAreIdempotent() {
        var m = machine()
        _ = m.start(now: 0)
        _ = m.handshakeCompleted(now: 1)
        let r12 = m.failed(now: 2, jitter: 0)
        #expect(r12 != .none)
        // The close notification that follows a forced close must not count again.
        let r13 = m.failed(now: 3, jitter: 0)
        #expect(r13 == .none)
        #expect(m.failures == 1)
    }

    @Test func stopClosesOnceAndIgnoresEverythingAfter() {
        var m = machine()
        _ = m.start(now: 0)
        let r14 = m.stop()
        #expect(r14 == .close)
        let r15 = m.stop()
        #expect(r15 == .none)
        let r16 = m.failed(now: 1, jitter: 0)
        #expect(r16 == .none)
        let r17 = m.timerFired(now: 10_000, jitter: 0)
        #expect(r17 == .none)
        let r18 = m.handshakeCompleted(now: 2)
        #expect(r18 == .none)
        #expect(m.nextDeadline == nil)
    }
}
