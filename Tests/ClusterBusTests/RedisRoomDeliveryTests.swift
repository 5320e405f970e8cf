import ClusterBus
import Protocol
import Runtime
import Testing

@Suite struct RedisRoomDeliveryTests {
    func msg(_ seq: UInt64, epoch: String = "e1") -> BusMessage {
        BusMessage(
            room: "r", offset: StreamOffset(epoch: epoch, milliseconds: 100, sequence: seq), data: JSONFragment("\(seq)"),
            publishedAtMilliseconds: 100)
    }
    func seqs(_ ms: [BusMessage]) -> [UInt64] { ms.map(\.offset.sequence) }

    @Test func liveMessagesFlowAndDuplicatesAreDropped() {
        var d = RedisRoomDelivery()
        let confirmed = d.subscriptionConfirmed()
        #expect(confirmed == false, "a first subscription has no cursor: no back-fill")
        let a = d.live(msg(1))
        let b = d.live(msg(2))
        let dup = d.live(msg(2))
        let old = d.live(msg(1))
        #expect(seqs(a) == [1] && seqs(b) == [2])
        #expect(dup.isEmpty && old.isEmpty)
        #expect(d.lastDelivered?.sequence == 2)
    }

    @Test func backfillDeliversHistoryThenHeldLiveMessagesInOrderWithoutDuplicates() throws {
        var d = RedisRoomDelivery()
        _ = d.subscriptionConfirmed()
        _ = d.live(msg(1))
        _ = d.live(msg(2))
        d.subscriptionLost()
        let due = d.subscriptionConfirmed()
        #expect(due == true)
        let early = d.live(msg(5))
        #expect(early.isEmpty, "before the read is issued, live messages are left to the read")
        let begun = d.beginBackfill()
        let (since, token) = try #require(begun)
        #expect(since.sequence == 2)
        // Live messages after the read was issued are held; 6 is also in the history (published before the read ran).
        let held6 = d.live(msg(6))
        let held7 = d.live(msg(7))
        #expect(held6.isEmpty && held7.isEmpty)
        #expect(d.heldCount == 2)
        let out = d.backfilled(token: token, entries: [msg(3), msg(4), msg(5), msg(6)])
        #expect(seqs(out) == [3, 4, 5, 6, 7])
        #expect(d.phase == .live)
        let next = d.live(msg(8))
        #expect(seqs(next) == [8])
    }

    @Test func staleBackfillResultIsIgnored() throws {
        var d = RedisRoomDelivery()
        _ = d.subscriptionConfirmed()
        _ = d.live(msg(1))
        d.subscriptionLost()
        _ = d.subscriptionConfirmed()
        let b1 = d.beginBackfill()
        let first = try #require(b1).token
        d.subscriptionLost()
        _ = d.subscriptionConfirmed()
        let b2 = d.beginBackfill()
        let second = try #require(b2).token
        let stale = d.backfilled(token: first, entries: [msg(2)])
        #expect(stale.isEmpty)
        let fresh = d.backfilled(token: second, entries: [msg(2), msg(3)])
        #expect(seqs(fresh) == [2, 3])
    }

    @Test func failedReadIsDueAgain() throws {
        var d = RedisRoomDelivery()
        d.joined(latest: StreamOffset(epoch: "e1", milliseconds: 100, sequence: 4))
        _ = d.subscriptionConfirmed()
        d.subscriptionLost()
        _ = d.subscriptionConfirmed()
        let b1 = d.beginBackfill()
        let (since, token) = try #require(b1)
        #expect(since.sequence == 4, "with nothing delivered the first join's offset is the cursor")
        _ = d.live(msg(9))
        d.backfillFailed(token: token)
        #expect(d.phase == .backfillPending && d.heldCount == 0)
        let b2 = d.beginBackfill()
        let again = try #require(b2).token
        let out = d.backfilled(token: again, entries: [msg(5), msg(9)])
        #expect(seqs(out) == [5, 9])
    }

    @Test func aResetHistoryIsReplayedFromItsStart() throws {
        var d = RedisRoomDelivery()
        _ = d.subscriptionConfirmed()
        _ = d.live(msg(40))
        d.subscriptionLost()
        _ = d.subscriptionConfirmed()
        let b = d.beginBackfill()
        let token = try #require(b).token
        let out = d.backfilled(token: token, entries: [msg(1, epoch: "e2"), msg(2, epoch: "e2")])
        #expect(out.map(\.offset.description) == ["e2:100-1", "e2:100-2"])
        let dup = d.live(msg(2, epoch: "e2"))
        let next = d.live(msg(3, epoch: "e2"))
        #expect(dup.isEmpty)
        #expect(seqs(next) == [3])
    }

    @Test func laterJoinsDoNotMoveTheBaseline() {
        var d = RedisRoomDelivery()
        d.joined(latest: StreamOffset(epoch: "e1", milliseconds: 1, sequence: 1))
        d.joined(latest: StreamOffset(epoch: "e1", milliseconds: 1, sequence: 9))
        #expect(d.cursor?.sequence == 1)
    }
}
