import Testing

@testable import Gateway

/// The drain driven with a fake clock: no process, no sleeps.
@Suite struct DrainMachineTests {
    static let settings = DrainMachine.Settings(delayMs: 2000, windowMs: 10_000, deadlineMs: 25_000, closeTimeoutMs: 2000, tickMs: 100)

    /// Runs the machine to the end like GatewayNode.drain: waits jump the clock, the slot answer is `slot`,
    /// connections vanish as `closed(fraction)` says. Returns the actions in order with the time they came.
    static func run(slot: Bool, open: Int, settings: DrainMachine.Settings = settings) -> [(UInt64, DrainMachine.Action)] {
        var m = DrainMachine(settings: settings, now: 0)
        var now: UInt64 = 0
        var left = open
        var out: [(UInt64, DrainMachine.Action)] = [(0, m.begin())]
        while out.count < 10_000 {
            let a = m.next(now: now, openConnections: { left })
            out.append((now, a))
            switch a {
            case .wait(let until): now = max(now, until)
            case .requestSlot: m.slotAnswered(slot, now: now); now += 5
            case .closeConnections(let f): left = min(left, open - Int((Double(open) * f).rounded(.up)))
            case .finished: return out
            default: break
            }
        }
        return out
    }

    @Test func phasesInOrderWithASlot() {
        let actions = Self.run(slot: true, open: 1000)
        #expect(actions.first?.1 == .announceDraining)
        #expect(actions.contains { $0.1 == .requestSlot })
        let listeners = actions.first { if case .closeListeners = $0.1 { return true } else { return false } }
        #expect(listeners?.0 == 2005, "listeners close after --drain-delay")
        #expect(listeners?.1 == .closeListeners(windowMs: 10_000))
        let closes = actions.compactMap { a -> (UInt64, Double)? in if case .closeConnections(let f) = a.1 { return (a.0, f) } else { return nil } }
        #expect(closes.count == 100, "one step per tick over the window, never all at once")
        #expect(closes.first!.1 > 0 && closes.first!.1 < 0.02)
        #expect(closes.last!.1 == 1.0)
        #expect(closes.last!.0 < 2005 + 10_000)
        #expect(actions.suffix(2).map(\.1) == [.stopBus, .finished])
        #expect(actions.last!.0 < 25_000, "done before the deadline")
    }

    @Test func anIdleNodeDoesNotSitOutTheWindow() {
        let actions = Self.run(slot: true, open: 0)
        let closes = actions.filter { if case .closeConnections = $0.1 { return true } else { return false } }
        #expect(closes.count == 1)
        #expect(actions.last!.0 < 2200)
    }

    @Test func withoutASlotItRetriesEachSecondThenDrainsAnyway() {
        let actions = Self.run(slot: false, open: 10)
        let asks = actions.filter { $0.1 == .requestSlot }.map(\.0)
        #expect(asks.count >= 10)
        for (a, b) in zip(asks, asks.dropFirst()) { #expect(b - a >= 1000) }
        #expect(actions.contains { $0.1 == .drainWithoutSlot })
        #expect(asks.last! + 10_000 + 1000 >= 25_000 - 1005, "it stopped asking once the window no longer fit")
        #expect(actions.last!.1 == .finished)
        #expect(actions.last!.0 <= 25_000)
    }

    @Test func windowShrinksToFitTheDeadline() {
        let tight = DrainMachine.Settings(delayMs: 5000, windowMs: 30_000, deadlineMs: 20_000, closeTimeoutMs: 2000)
        let actions = Self.run(slot: true, open: 100, settings: tight)
        let listeners = actions.first { if case .closeListeners = $0.1 { return true } else { return false } }
        #expect(actions.contains { $0.1 == .drainWithoutSlot }, "a window longer than the deadline leaves no time to wait for a slot")
        #expect(listeners?.1 == .closeListeners(windowMs: 20_000 - 5000 - 2000 - 500))
        #expect(actions.last!.0 <= 20_000)
    }

    @Test func stragglersAreAwaitedOnlyUntilTheDeadline() {
        var m = DrainMachine(settings: Self.settings, now: 0)
        _ = m.begin()
        #expect(m.next(now: 0, openConnections: { 5 }) == .requestSlot)
        m.slotAnswered(true, now: 0)
        #expect(m.next(now: 0, openConnections: { 5 }) == .wait(until: 2000))
        #expect(m.next(now: 2000, openConnections: { 5 }) == .closeListeners(windowMs: 10_000))
        #expect(m.phase == .closing)
        var now: UInt64 = 2000
        var last = DrainMachine.Action.finished
        while m.phase == .closing || m.phase == .awaitingCloses {
            last = m.next(now: now, openConnections: { 5 })  // nobody ever closes
            if case .wait(let until) = last { now = until }
        }
        #expect(last == .stopBus)
        #expect(now >= 25_000 - 500 - 20 && now < 25_000)
        #expect(DrainMachine.Phase.awaitingCloses.gauge == 3)
    }
}
