import Foundation
import Testing

@testable import Gateway

/// Which plain joins need the bus (issue 17): the value type alone, then the gateway on a real Redis.
@Suite struct JoinOffsetCacheTests {
    @Test func firstJoinAsksAndTheOthersWaitForItsAnswer() {
        var c = JoinOffsetCache<Int>()
        #expect(c.plainJoin(1, now: 0, haveOffset: false, isBusUp: true, maxAgeMilliseconds: 0) == .ask)
        let token = c.askToken
        #expect(c.plainJoin(2, now: 1, haveOffset: false, isBusUp: true, maxAgeMilliseconds: 0) == .wait)
        #expect(c.plainJoin(3, now: 2, haveOffset: true, isBusUp: true, maxAgeMilliseconds: 0) == .wait, "an offset seen before any answer is not trusted")
        #expect(c.askToken == token && c.asking)
        #expect(c.answered(now: 5) == [1, 2, 3], "every waiter, in arrival order")
        #expect(!c.asking && c.waiters.isEmpty)
        // Confirmed: answered from the loop room, no bus.
        #expect(c.plainJoin(4, now: 6, haveOffset: true, isBusUp: true, maxAgeMilliseconds: 0) == .answer)
        #expect(c.waiters.isEmpty)
    }

    @Test func noOffsetOrBusDownOrAgeAsksAgain() {
        var c = JoinOffsetCache<Int>()
        _ = c.plainJoin(1, now: 0, haveOffset: false, isBusUp: true, maxAgeMilliseconds: 1000)
        _ = c.answered(now: 100)
        #expect(c.plainJoin(2, now: 200, haveOffset: false, isBusUp: true, maxAgeMilliseconds: 1000) == .ask, "no offset known on the loop")
        _ = c.answered(now: 200)
        #expect(c.plainJoin(3, now: 300, haveOffset: true, isBusUp: false, maxAgeMilliseconds: 1000) == .ask, "bus down: the bus decides")
        _ = c.answered(now: 300)
        #expect(c.plainJoin(4, now: 1299, haveOffset: true, isBusUp: true, maxAgeMilliseconds: 1000) == .answer)
        #expect(c.plainJoin(5, now: 1300, haveOffset: true, isBusUp: true, maxAgeMilliseconds: 1000) == .ask, "confirmation lapsed")
    }

    @Test func aRefusalReturnsTheWaitersAndForgetsTheConfirmation() {
        var c = JoinOffsetCache<Int>()
        _ = c.plainJoin(1, now: 0, haveOffset: true, isBusUp: true, maxAgeMilliseconds: 0)
        _ = c.answered(now: 1)
        #expect(c.plainJoin(2, now: 2, haveOffset: true, isBusUp: false, maxAgeMilliseconds: 0) == .ask)
        let first = c.askToken
        #expect(c.plainJoin(3, now: 2, haveOffset: true, isBusUp: false, maxAgeMilliseconds: 0) == .wait)
        #expect(c.failed() == [2, 3])
        #expect(c.plainJoin(4, now: 3, haveOffset: true, isBusUp: true, maxAgeMilliseconds: 0) == .ask, "unconfirmed after a refusal")
        #expect(c.askToken != first, "each read has its own token")
    }
}

extension ClusterTests {
    /// Redis reads for joins of a room the node already subscribes to: the read script's `XREVRANGE` (one per
    /// join read; `INFO commandstats` counts commands run by scripts), which presence writes do not use.
    @Test func joinsOfASubscribedRoomCostNoRedisCommand() throws {
        let (redis, nodes) = try cluster(["a"], prefix: "t-joincache:", threads: 1)
        defer { withExtendedLifetime((redis, nodes)) {} }
        let first = try WSClient(port: nodes[0].port)
        #expect(try first.join("hot").op == "joined")
        try publish(first, "hot", "1", id: 1)
        let published = try first.drainJSON(quiet: 0.3)
        let offset = try #require(published.first { $0.op == "message" }?.offset)
        func joinReads() throws -> Int {
            let info = try redis.command(["INFO", "commandstats"]).text ?? ""
            let line = info.split(separator: "\r\n").first { $0.hasPrefix("cmdstat_xrevrange:") } ?? ""
            return Int(line.split(separator: "=").dropFirst().first?.split(separator: ",").first ?? "0") ?? 0
        }
        let before = try joinReads()
        #expect(before >= 1, "the first join read the room")
        var joiners: [WSClient] = []
        for _ in 0..<20 {
            let c = try WSClient(port: nodes[0].port)
            let j = try c.join("hot")
            #expect(j.op == "joined" && j.offset == offset && j.recovered == false, "the newest offset the node delivered")
            joiners.append(c)
        }
        // A repeated join is answered the same way.
        #expect(try joiners[0].join("hot").offset == offset)
        #expect(try joinReads() == before, "21 joins of a subscribed room read nothing (they were 21 reads)")
        // And they are members: the next message reaches every joiner.
        try publish(first, "hot", "2")
        for c in joiners { #expect(try messages(c, quiet: 0.3).map(dataText) == ["2"]) }
    }
}
