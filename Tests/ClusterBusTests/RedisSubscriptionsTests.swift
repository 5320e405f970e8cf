import ClusterBus
import Runtime
import Testing

@Suite struct RedisSubscriptionsTests {
    @Test func changesAreBatchedPerFlushAndNotSentWhileDisconnected() {
        var s = RedisSubscriptions()
        let r1 = s.want("r:a")
        #expect(r1 == false, "not connected: nothing to flush yet")
        s.want("r:b")
        let r2 = s.flush()
        #expect(r2 == ([], []))
        s.connectionReady()
        let (sub, unsub) = s.flush()
        #expect(Set(sub) == ["r:a", "r:b"] && unsub.isEmpty)
        let r3 = s.flush()
        #expect(r3 == ([], []))
    }

    @Test func joinLeaveJoinWithinOneTickSendsNothingExtra() {
        var s = RedisSubscriptions()
        s.connectionReady()
        s.want("r:x")
        s.unwant("r:x")
        s.want("r:x")
        let r4 = s.flush()
        #expect(r4 == (["r:x"], []))
        let r5 = s.subscribed("r:x")
        #expect(r5 == .active)
        s.unwant("r:x")
        s.want("r:x")
        let r6 = s.flush()
        #expect(r6 == ([], []), "still wanted and subscribed: no command")
        #expect(s.isActive("r:x"))
    }

    @Test func resubscribeWaitsForThePendingUnsubscribeConfirmation() {
        var s = RedisSubscriptions()
        s.connectionReady()
        s.want("r:x")
        _ = s.flush()
        _ = s.subscribed("r:x")
        s.unwant("r:x")
        let r7 = s.flush()
        #expect(r7 == ([], ["r:x"]))
        s.want("r:x")
        let r8 = s.flush()
        #expect(r8 == ([], []), "no SUBSCRIBE while the UNSUBSCRIBE is unconfirmed")
        let r9 = s.unsubscribed("r:x")
        #expect(r9 == true, "wanted again: due at the next flush")
        let r10 = s.flush()
        #expect(r10 == (["r:x"], []))
        let r11 = s.subscribed("r:x")
        #expect(r11 == .active)
    }

    @Test func confirmationOfAnUnwantedChannelSchedulesItsUnsubscribe() {
        var s = RedisSubscriptions()
        s.connectionReady()
        s.want("r:y")
        _ = s.flush()
        s.unwant("r:y")
        let r12 = s.flush()
        #expect(r12 == ([], []), "waits for the SUBSCRIBE confirmation")
        let r13 = s.subscribed("r:y")
        #expect(r13 == .unwanted)
        let r14 = s.flush()
        #expect(r14 == ([], ["r:y"]))
        let r15 = s.subscribed("r:zzz")
        #expect(r15 == .unexpected)
    }

    @Test func lostConnectionResubscribesEverythingStillWanted() {
        var s = RedisSubscriptions()
        s.connectionReady()
        for ch in ["c1", "c2", "c3"] { s.want(ch) }
        _ = s.flush()
        for ch in ["c1", "c2", "c3"] { _ = s.subscribed(ch) }
        s.connectionLost()
        #expect(!s.isActive("c1"))
        s.unwant("c2")
        s.want("c4")
        let r16 = s.flush()
        #expect(r16 == ([], []))
        s.connectionReady()
        let r17 = s.flush()
        #expect(r17 == (["c1", "c3", "c4"], []))
    }
}
