import ClusterBus
import Runtime
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

@Suite struct RedisPresenceTableUserTests {
    @Test func userChangesAreCollapsedPerTickAndRewrittenInFullAfterAReconnect() {
        var t = RedisPresenceTable()
        #expect(t.setUser(room: "a", user: "alice", present: true) == false, "no members: nothing to record")
        t.set(room: "a", count: 2)
        t.setUser(room: "a", user: "alice", present: true)
        t.setUser(room: "a", user: "bob", present: true)
        let first = t.flush()
        #expect(first == [.init(room: "a", count: 2, replaceUsers: false, added: ["alice", "bob"], removed: [])])
        t.set(room: "a", count: 1)
        t.setUser(room: "a", user: "bob", present: false)
        t.setUser(room: "a", user: "carol", present: true)
        t.setUser(room: "a", user: "carol", present: false)
        #expect(t.flush() == [.init(room: "a", count: 1, replaceUsers: false, added: [], removed: ["bob", "carol"])])
        t.markAllDirty()
        #expect(t.flush() == [.init(room: "a", count: 1, replaceUsers: true, added: ["alice"], removed: [])])
        t.set(room: "a", count: 0)
        #expect(t.flush() == [.init(room: "a", count: 0, replaceUsers: true, added: [], removed: [])])
        t.set(room: "a", count: 1)
        #expect(t.flush().first?.added == [], "users went with the count")
    }

    @Test func membersGoneAndBackWithinOneTickReplaceTheUserSet() {
        var t = RedisPresenceTable()
        t.set(room: "a", count: 2)
        t.setUser(room: "a", user: "alice", present: true)
        t.setUser(room: "a", user: "bob", present: true)
        _ = t.flush()
        // bob leaves, alice leaves and rejoins, all before the next flush: Redis must end with {alice}.
        t.set(room: "a", count: 1)
        t.setUser(room: "a", user: "bob", present: false)
        t.set(room: "a", count: 0)
        t.set(room: "a", count: 1)
        t.setUser(room: "a", user: "alice", present: true)
        #expect(t.flush() == [.init(room: "a", count: 1, replaceUsers: true, added: ["alice"], removed: [])])
    }
}
