import ClusterBus
import Foundation
import Glibc
import Protocol
import Runtime
import Testing

/// `--history-ttl`: a room's history expires after its last publish, in Redis (key TTLs) and in the
/// in-process bus, and a resume from before the expiry is answered `recovered: false`.
extension ClusterTests {
    @Test func redisHistoryKeysExpireAfterTheTTLAndAnOldOffsetIsNotRecovered() throws {
        let prefix = "t-ttl:"
        let (redis, nodes) = try cluster(["a"], prefix: prefix, ["--history-ttl", "3s"])
        defer { withExtendedLifetime((redis, nodes)) {} }
        let member = try WSClient(port: nodes[0].port)
        _ = try member.join("ttl")
        for i in 0..<2 { try publish(member, "ttl", "\(i)") }
        let got = try messages(member, quiet: 0.3)
        #expect(got.count == 2)
        let old = try #require(got.first?.offset)
        for key in ["history:ttl", "meta:ttl"] {
            let ttl = try #require(try redis.command(["PTTL", prefix + key]).int)
            #expect(ttl > 0 && ttl <= 3000, "\(key): PTTL \(ttl) ms, expected 1...3000 after a publish")
        }
        // A join that creates a room's keys gives them the TTL as well.
        let lurker = try WSClient(port: nodes[0].port)
        _ = try lurker.join("quiet")
        let quietTTL = try #require(try redis.command(["PTTL", prefix + "history:quiet"]).int)
        #expect(quietTTL > 0 && quietTTL <= 3000, "history:quiet: PTTL \(quietTTL)")

        try waitUntil(6, "history keys expired") {
            try redis.command(["EXISTS", prefix + "history:ttl", prefix + "meta:ttl", prefix + "history:quiet"]).int == 0
        }
        let resumer = try WSClient(port: nodes[0].port)
        try resumer.sendOp("{\"op\":\"join\",\"room\":\"ttl\",\"since\":\"\(old)\"}")
        let joined = try resumer.nextJSON()
        #expect(joined.op == "joined" && joined.recovered == false)
        let newEpoch = joined.offset.flatMap { StreamOffset($0) }?.epoch
        #expect(newEpoch != nil && newEpoch != StreamOffset(old)?.epoch, "a new history gets a new epoch")
        #expect(try messages(resumer, quiet: 0.3).isEmpty, "nothing is replayed from an expired history")
    }

    @Test func inProcessHistoryExpiresAfterTheTTL() throws {
        let gw = try GatewayProcess(["--history-ttl", "500ms"], threads: 1)
        let member = try WSClient(port: gw.port)
        _ = try member.join("ttl")
        for i in 0..<3 { try publish(member, "ttl", "\(i)") }
        let got = try messages(member, quiet: 0.3)
        #expect(got.count == 3)
        let first = try #require(got.first?.offset)

        // Within the TTL: resumed.
        let early = try WSClient(port: gw.port)
        try early.sendOp("{\"op\":\"join\",\"room\":\"ttl\",\"since\":\"\(first)\"}")
        let recovered = try early.drainJSON(quiet: 0.3)
        #expect(recovered.first?.recovered == true && recovered.dropFirst().map(dataText) == ["1", "2"])

        usleep(700_000)
        // The history started again: new offsets never continue the old ones, even at equal sequence numbers.
        try publish(member, "ttl", "\"after\"")
        let after = try messages(member, quiet: 0.3)
        #expect(after.count == 1)
        let late = try WSClient(port: gw.port)
        try late.sendOp("{\"op\":\"join\",\"room\":\"ttl\",\"since\":\"\(first)\"}")
        let joined = try late.drainJSON(quiet: 0.3)
        #expect(joined.first?.op == "joined" && joined.first?.recovered == false)
        #expect(joined.dropFirst().isEmpty)
        #expect(after.first?.offset != nil && after.first?.offset != first)
    }
}

extension ClusterTests {
    /// Issue 11 finding 3 over the wire: `--max-history-memory` drops the least recently published room's
    /// history first; a resume into it is `recovered: false` with no replay, the other room still resumes,
    /// and /metrics shows the evictions and the history bytes held.
    @Test func inProcessHistoryOverTheNodeBudgetIsEvictedAndAResumeIsNotRecovered() throws {
        let gw = try GatewayProcess(["--max-history-memory", "4KiB", "--history-bytes", "0"], threads: 1)
        let member = try WSClient(port: gw.port)
        _ = try member.join("old")
        _ = try member.join("new")
        let big = "\"" + String(repeating: "x", count: 998) + "\""  // 1,000 bytes: a message counts 1,131 in "new"
        for _ in 0..<2 { try publish(member, "old", big) }
        for _ in 0..<3 { try publish(member, "new", big) }
        let got = try messages(member, quiet: 0.3)
        #expect(got.count == 5, "evicted or not, every message was delivered live")
        let oldFirst = try #require(got.first { $0.room == "old" }?.offset)
        let newFirst = try #require(got.first { $0.room == "new" }?.offset)

        let resumer = try WSClient(port: gw.port)
        try resumer.sendOp("{\"op\":\"join\",\"room\":\"old\",\"since\":\"\(oldFirst)\"}")
        let old = try resumer.drainJSON(quiet: 0.3)
        #expect(old.first?.op == "joined" && old.first?.recovered == false, "evicted: never a silent gap")
        #expect(old.dropFirst().isEmpty)
        try resumer.sendOp("{\"op\":\"join\",\"room\":\"new\",\"since\":\"\(newFirst)\"}")
        let new = try resumer.drainJSON(quiet: 0.3)
        #expect(new.first?.recovered == true && new.dropFirst().count == 2)
        #expect(try gw.metric("switchboard_history_evictions_total") == 2)
        #expect(try gw.metric("switchboard_memory_bytes{area=\"history\"}") == Double(3 * (1000 + 3 + 128)))
    }
}

extension ClusterTests {
    /// A history whose meta hash vanished on its own (eviction) starts again empty: a back-fill after a
    /// subscriber outage must not deliver the old entries a second time under the new epoch.
    @Test func aHistoryThatLostItsMetaStartsAgainWithoutRedeliveringOldEntries() throws {
        let prefix = "t-meta:"
        let (redis, nodes) = try cluster(["a"], prefix: prefix)
        defer { withExtendedLifetime((redis, nodes)) {} }
        let member = try WSClient(port: nodes[0].port)
        _ = try member.join("m")
        for i in 0..<5 { try publish(member, "m", "\(i)") }
        #expect(try messages(member, quiet: 0.3).map(dataText) == ["0", "1", "2", "3", "4"])
        #expect(try redis.command(["DEL", prefix + "meta:m"]).int == 1)
        _ = try redis.command(["CLIENT", "KILL", "TYPE", "pubsub"])
        // The node notices (a subscriber reconnect), resubscribes and back-fills; publish once it is up again.
        try waitUntil(10, "subscriber reconnected") {
            (try nodes[0].metric("switchboard_redis_reconnects_total{conn=\"subscriber\"}") ?? 0) >= 1
                && (try? httpGet(port: nodes[0].adminPort, path: "/ready"))?.0 == 200
        }
        var acked = false
        var after: [String] = []
        let deadline = Date().addingTimeInterval(10)
        while !acked && Date() < deadline {
            try publish(member, "m", "5", id: 5)
            for m in try member.drainJSON(quiet: 0.5) {
                if m.op == "ack" { acked = true }
                if m.op == "message" { after.append(dataText(m)) }
            }
            if !acked { usleep(200_000) }  // `unavailable` while the bus was still reconnecting
        }
        #expect(acked, "the publish after the outage was never acknowledged")
        after += try messages(member, quiet: 0.5).map(dataText)
        #expect(after == ["5"], "old entries came back: \(after)")
        let length = try redis.command(["XLEN", prefix + "history:m"]).int
        #expect(length == 1, "the orphaned entries were dropped with the old epoch: XLEN \(String(describing: length))")
    }
}
