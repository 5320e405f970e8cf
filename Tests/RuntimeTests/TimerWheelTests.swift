import Runtime
import Testing

/// The timer wheel driven with a fake clock: no threads, no sleeps.
@Suite struct TimerWheelTests {
    final class Probe: TimerTarget {
        var timerGeneration: UInt32 = 0
        var fired: [UInt64] = []
        var onFire: ((UInt64) -> Void)?
        func timerFired(now: UInt64) {
            fired.append(now)
            onFire?(now)
        }
    }

    func fire(_ wheel: inout TimerWheel, at now: UInt64) {
        var due: [(target: TimerTarget, generation: UInt32)] = []
        wheel.collectExpired(now: now, into: &due)
        for (t, g) in due where t.timerGeneration == g { t.timerFired(now: now) }
    }

    @Test func firesAtOrAfterTheDeadlineNeverBefore() {
        var wheel = TimerWheel(now: 1000, tickMilliseconds: 10, slotCount: 64)
        let p = Probe()
        wheel.schedule(p, generation: 0, deadline: 1055)
        fire(&wheel, at: 1050)
        #expect(p.fired.isEmpty)
        fire(&wheel, at: 1054)
        #expect(p.fired.isEmpty)
        fire(&wheel, at: 1060)
        #expect(p.fired == [1060])
        #expect(wheel.count == 0)
    }

    @Test func bumpingTheGenerationCancelsInO1() {
        var wheel = TimerWheel(now: 0, tickMilliseconds: 10, slotCount: 64)
        let p = Probe()
        wheel.schedule(p, generation: 0, deadline: 50)
        p.timerGeneration = 1
        wheel.schedule(p, generation: 1, deadline: 200)
        fire(&wheel, at: 100)
        #expect(p.fired.isEmpty)
        fire(&wheel, at: 200)
        #expect(p.fired == [200])
    }

    @Test func deadlinesBeyondOneRevolutionWaitForTheirRound() {
        var wheel = TimerWheel(now: 0, tickMilliseconds: 10, slotCount: 8)  // 80 ms per revolution
        let p = Probe()
        wheel.schedule(p, generation: 0, deadline: 250)
        fire(&wheel, at: 100)
        fire(&wheel, at: 200)
        #expect(p.fired.isEmpty)
        fire(&wheel, at: 250)
        #expect(p.fired == [250])
    }

    @Test func aCallbackMayRearmItself() {
        var wheel = TimerWheel(now: 0, tickMilliseconds: 10, slotCount: 64)
        let p = Probe()
        var rearm: [UInt64] = []
        p.onFire = { now in rearm.append(now + 30) }
        wheel.schedule(p, generation: 0, deadline: 30)
        for t in stride(from: UInt64(0), through: 200, by: 10) {
            fire(&wheel, at: t)
            for d in rearm { wheel.schedule(p, generation: 0, deadline: d) }
            rearm = []
        }
        #expect(p.fired == [30, 60, 90, 120, 150, 180])
    }

    @Test func nextDueIsReportedForTheIdleWait() {
        var wheel = TimerWheel(now: 0, tickMilliseconds: 10, slotCount: 64)
        #expect(wheel.millisecondsUntilNext(now: 0) == nil)
        let p = Probe()
        wheel.schedule(p, generation: 0, deadline: 95)
        #expect(wheel.millisecondsUntilNext(now: 0) == 100)
    }
}
