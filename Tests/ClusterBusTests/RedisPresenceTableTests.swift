import ClusterBus
import Testing

@Suite struct RedisPresenceTableTests {
    @Test func burstOfChangesFlushesOnceWithTheLatestCount() {
        var t = RedisPresenceTable()
        t.set(room: "a", count: 1)
        t.set(room: "a", count: 2)
        t.set(room: "b", count: 1)
        t.set(room: "a", count: 3)
        let out = t.flush()
        #expect(out.map(\.room) == ["a", "b"] && out.map(\.count) == [3, 1])
        let r1 = t.flush()
        #expect(r1.isEmpty)
        let r2 = t.set(room: "a", count: 3)
        #expect(r2 == false, "unchanged: nothing to write")
    }

    @Test func zeroRemovesAndReconnectRewritesEveryRoomWithMembers() {
        var t = RedisPresenceTable()
        t.set(room: "a", count: 2)
        t.set(room: "b", count: 1)
        _ = t.flush()
        t.set(room: "b", count: 0)
        let r3 = t.flush()
        #expect(r3.map(\.count) == [0])
        t.markAllDirty()
        let r4 = t.flush()
        #expect(r4.map(\.room) == ["a"])
        t.markDirty("z")
        let r5 = t.flush()
        #expect(r5.first?.count == 0)
    }
}
