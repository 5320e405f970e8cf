import Protocol
import Testing

@testable import Gateway

/// The connection machine driven with a fake clock: no socket, no process, no loop.
@Suite struct ConnectionMachineTests {
    static let limits = ConnectionLimits(
        handshakeTimeoutMs: 5000, pingIntervalMs: 25_000, pongTimeoutMs: 10_000, idleTimeoutMs: 0,
        closeTimeoutMs: 5000, maxFrameRate: 10, maxOutboundBytes: 1000, slowConsumerGraceMs: 1000)

    static func open(at t: UInt64 = 0, limits: ConnectionLimits = limits) -> ConnectionMachine {
        var m = ConnectionMachine(limits: limits, now: t)
        m.opened(now: t, limits: limits)
        return m
    }

    /// Runs every due action at `now`, as Connection.timerFired does: a reaping action ends the round (the
    /// connection then closes, which changes the phase).
    static func fire(_ m: inout ConnectionMachine, at now: UInt64) -> [ConnectionMachine.TimerAction] {
        var out: [ConnectionMachine.TimerAction] = []
        while let a = m.timerFired(now: now) {
            out.append(a)
            if a == .idle || a == .pongTimeout || out.count > 10 { break }
        }
        return out
    }

    // MARK: - Handshake

    @Test func handshakeDeadlineCountsFromAcceptNotFromBytes() {
        var m = ConnectionMachine(limits: Self.limits, now: 100)
        #expect(m.phase == .http)
        #expect(m.deadline == 5100)
        let r1 = Self.fire(&m, at: 5099)
        #expect(r1.isEmpty)
        let r2 = Self.fire(&m, at: 5100)
        #expect(r2 == [.handshakeTimeout])
    }

    @Test func authenticatingHasItsOwnDeadlineAndThenOpens() {
        var m = ConnectionMachine(limits: Self.limits, now: 0)
        m.beginAuthentication(until: 7000)
        #expect(m.phase == .authenticating)
        #expect(m.deadline == 7000)
        let r3 = Self.fire(&m, at: 5100)
        #expect(r3.isEmpty, "the handshake deadline no longer applies while the backend decides")
        m.opened(now: 6000, limits: Self.limits)
        #expect(m.phase == .open)
        #expect(m.deadline == 6000 + 25_000, "next ping")
    }

    @Test func rejectedHandshakeLingersThenResets() {
        var m = ConnectionMachine(limits: Self.limits, now: 0)
        m.rejected(now: 10)
        #expect(m.phase == .closing)
        #expect(m.stopReading)
        #expect(m.deadline == 10 + 2000)
        let r4 = Self.fire(&m, at: 2010)
        #expect(r4 == [.closeTimeout])
        let r5 = m.socketClosed()
        #expect(!r5, "never open: no close log line, no gauge change")
    }

    // MARK: - Close handshake matrix (RFC 6455 §7)

    @Test(arguments: [CloseCode.normalClosure, CloseCode(rawValue: 4321), nil] as [CloseCode?])
    func peerClosesFirstAndIsAnsweredWithItsCode(code: CloseCode?) {
        var m = Self.open()
        let a = m.peerClosed(code: code, now: 50)
        #expect(a.reply == .some(code), "echo the peer's code (§5.5.1); none when it sent none")
        #expect(a.leftOpen)
        #expect(m.phase == .closing)
        #expect(m.stopReading)
        #expect(m.closeCode == code?.rawValue ?? 1005)
        #expect(m.deadline == 50 + 2000, "the server closes TCP first; it only waits briefly for EOF")
        let r6 = m.startClose(.goingAway, reason: "x", mode: .clean, now: 60)
        #expect(r6 == .none, "no second close frame")
        let r7 = m.socketClosed()
        #expect(!r7, "already counted when it left open")
    }

    @Test func serverClosesCleanlyAndThePeerAnswers() {
        var m = Self.open()
        let a = m.startClose(.serviceRestart, reason: "server draining", mode: .clean, now: 100)
        #expect(a == .sendClose(code: .serviceRestart, reason: "server draining", shutdownAfterFlush: false, leftOpen: true))
        #expect(m.deadline == 100 + 5000, "clean close waits --close-timeout for the peer's close")
        #expect(!m.stopReading, "the peer's close frame must still be read")
        let reply = m.peerClosed(code: .serviceRestart, now: 200)
        #expect(reply.reply == nil, "our close already went out")
        #expect(!reply.leftOpen)
        #expect(m.closeCode == 1012, "the code we sent is the one logged")
    }

    @Test func serverClosesCleanlyAndThePeerNeverAnswers() {
        var m = Self.open()
        _ = m.startClose(.goingAway, reason: "idle timeout", mode: .clean, now: 0)
        let r8 = Self.fire(&m, at: 4999)
        #expect(r8.isEmpty)
        let r9 = Self.fire(&m, at: 5000)
        #expect(r9 == [.closeTimeout])
    }

    @Test func failSendsCloseThenFinAndStopsReading() {
        var m = Self.open()
        let a = m.startClose(.protocolError, reason: "reserved opcode 3", mode: .fail, now: 0)
        #expect(a == .sendClose(code: .protocolError, reason: "reserved opcode 3", shutdownAfterFlush: true, leftOpen: true))
        #expect(m.stopReading)
        #expect(m.deadline == 2000)
        let r10 = m.startClose(.protocolError, reason: "again", mode: .fail, now: 1)
        #expect(r10 == .shutdownAfterFlush)
        #expect(m.closeReason == "reserved opcode 3")
    }

    @Test func closeBeforeTheUpgradeClosesTheSocket() {
        var m = ConnectionMachine(limits: Self.limits, now: 0)
        let r11 = m.startClose(.goingAway, reason: "shutdown", mode: .clean, now: 0)
        #expect(r11 == .closeSocket)
        let r12 = m.startClose(.protocolError, reason: "bad", mode: .fail, now: 0)
        #expect(r12 == .none)
    }

    @Test func socketEndingWithoutCloseFrameIs1006() {
        var m = Self.open()
        m.transportEnded()
        let r13 = m.socketClosed()
        #expect(r13)
        #expect(m.closeCode == 1006)
        #expect(m.phase == .closed)
        #expect(m.deadline == 0)
    }

    // MARK: - Ping, pong, idle

    @Test func pingThenPongTimeoutWhenNothingArrives() {
        var m = Self.open()
        let r14 = Self.fire(&m, at: 25_000)
        #expect(r14 == [.sendPing])
        #expect(m.deadline == 35_000)
        let r15 = Self.fire(&m, at: 35_000)
        #expect(r15 == [.pongTimeout])
    }

    @Test func anyFrameAfterThePingKeepsTheConnection() {
        var m = Self.open()
        _ = Self.fire(&m, at: 25_000)
        let r16 = m.frameArrived(now: 30_000, isData: false)
        #expect(r16)
        let r17 = Self.fire(&m, at: 35_000)
        #expect(r17.isEmpty)
        #expect(m.deadline == 50_000, "the next ping")
        let r18 = Self.fire(&m, at: 50_000)
        #expect(r18 == [.sendPing])
    }

    @Test func idleTimeoutCountsDataFramesOnly() {
        let limits = ConnectionLimits(pingIntervalMs: 1000, pongTimeoutMs: 500, idleTimeoutMs: 3000, maxFrameRate: 0)
        var m = Self.open(limits: limits)
        for t in stride(from: UInt64(1000), through: 2000, by: 1000) {
            let r19 = Self.fire(&m, at: t)
            #expect(r19 == [.sendPing])
            let r20 = m.frameArrived(now: t + 1, isData: false)
            #expect(r20, "pongs keep it alive but are not data")
        }
        let r21 = Self.fire(&m, at: 3000)
        #expect(r21 == [.idle])
    }

    // MARK: - Frame rate

    @Test func frameRateAllowsTwoSecondsOfBurstThenRefuses() {
        var m = Self.open()
        for _ in 0..<20 { let r22 = m.frameArrived(now: 0, isData: true); #expect(r22) }
        let r23 = m.frameArrived(now: 0, isData: true)
        #expect(!r23)
        let r24 = m.frameArrived(now: 100, isData: true)
        #expect(r24, "refilled at 10 per second")
    }

    @Test func echoLimitsHaveNoFrameRate() {
        var m = Self.open(limits: ConnectionLimits(maxFrameRate: 0))
        for _ in 0..<100_000 { let r25 = m.frameArrived(now: 0, isData: false); #expect(r25) }
    }

    // MARK: - Outbound pressure

    @Test func emptyQueueTakesAnyFrame() {
        var m = Self.open()
        let r26 = m.outbound(queuedBytes: 0, frameBytes: 1_000_000, droppable: false, now: 0)
        #expect(r26 == .queue)
    }

    @Test func droppableFramesAreShedOverTheMark() {
        var m = Self.open()
        let r27 = m.outbound(queuedBytes: 900, frameBytes: 200, droppable: true, now: 0)
        #expect(r27 == .shed)
        let r28 = m.outbound(queuedBytes: 500, frameBytes: 200, droppable: true, now: 0)
        #expect(r28 == .queue)
    }

    @Test func slowConsumerGraceThenClose() {
        var m = Self.open()
        let r29 = m.outbound(queuedBytes: 900, frameBytes: 200, droppable: false, now: 100)
        #expect(r29 == .queue, "over the mark: grace starts")
        let r30 = m.outbound(queuedBytes: 1100, frameBytes: 200, droppable: false, now: 1099)
        #expect(r30 == .queue)
        let r31 = m.outbound(queuedBytes: 1300, frameBytes: 200, droppable: false, now: 1100)
        #expect(r31 == .slowConsumer)
    }

    @Test func slowConsumerPastTwiceTheMarkAtOnce() {
        var m = Self.open()
        let r32 = m.outbound(queuedBytes: 900, frameBytes: 1200, droppable: false, now: 0)
        #expect(r32 == .slowConsumer)
    }

    @Test func graceRestartsAfterTheQueueDrains() {
        var m = Self.open()
        let r33 = m.outbound(queuedBytes: 900, frameBytes: 200, droppable: false, now: 0)
        #expect(r33 == .queue)
        let r34 = m.outbound(queuedBytes: 100, frameBytes: 200, droppable: false, now: 500)
        #expect(r34 == .queue, "under the mark again")
        let r35 = m.outbound(queuedBytes: 900, frameBytes: 200, droppable: false, now: 1200)
        #expect(r35 == .queue, "a new grace period")
    }

    // MARK: - Authentication deadlines

    @Test func authTimeoutIsDueOnlyWhileOpen() {
        var m = Self.open()
        m.setAuthDeadline(.authTimeout, at: 10_000)
        #expect(m.deadline == 10_000)
        let r36 = Self.fire(&m, at: 10_000)
        #expect(r36 == [.auth(.authTimeout)])
        #expect(m.authDeadline == .none)
        #expect(m.deadline == 25_000, "back to the ping schedule")
    }

    @Test func tokenNoticeExpiryAndGraceInOrder() {
        var m = Self.open()
        m.setAuthDeadline(.expiryNotice, at: 1000)
        let r37 = Self.fire(&m, at: 1000)
        #expect(r37 == [.auth(.expiryNotice)])
        m.setAuthDeadline(.expiry, at: 2000)
        let r38 = Self.fire(&m, at: 1999)
        #expect(r38.isEmpty)
        let r39 = Self.fire(&m, at: 2000)
        #expect(r39 == [.auth(.expiry)])
        m.setAuthDeadline(.graceEnd, at: 3000)
        let r40 = Self.fire(&m, at: 3000)
        #expect(r40 == [.auth(.graceEnd)])
    }

    @Test func closingCancelsTheAuthDeadline() {
        var m = Self.open()
        m.setAuthDeadline(.graceEnd, at: 1000)
        _ = m.startClose(.goingAway, reason: "x", mode: .clean, now: 500)
        let r41 = Self.fire(&m, at: 1000)
        #expect(r41.isEmpty)
        #expect(m.deadline == 5500)
    }

    @Test func severalThingsDueAtOnceComeOneByOne() {
        let limits = ConnectionLimits(pingIntervalMs: 1000, pongTimeoutMs: 500, maxFrameRate: 0)
        var m = Self.open(limits: limits)
        m.setAuthDeadline(.expiry, at: 1000)
        let r42 = Self.fire(&m, at: 1000)
        #expect(r42 == [.auth(.expiry), .sendPing])
    }
}
