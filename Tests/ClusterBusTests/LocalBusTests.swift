import Glibc
import Protocol
import Runtime
import Testing

@testable import ClusterBus

/// `LocalRooms` history expiry: resume semantics and memory that follows the rooms in use.
@Suite struct LocalBusTests {
    func publish(_ bus: LocalRooms, _ room: String, _ data: String) -> StreamOffset? {
        let box = Lock<StreamOffset?>(nil)
        bus.publish(room: room, data: JSONFragment(data), idempotencyKey: nil) { r in box.withLock { $0 = try? r.get() } }
        return box.withLock { $0 }
    }

    func join(_ bus: LocalRooms, _ room: String, since: StreamOffset?) -> JoinResult? {
        let box = Lock<JoinResult?>(nil)
        bus.join(room: room, since: since) { r in box.withLock { $0 = try? r.get() } }
        return box.withLock { $0 }
    }

    @Test func expiredRoomsNobodyIsInAreForgottenAndOldOffsetsAreNotRecovered() throws {
        let bus = LocalRooms(historySize: 10, historyTTLMilliseconds: 200)
        let first = try #require(publish(bus, "kept", "1"))
        _ = publish(bus, "kept", "2")
        for i in 0..<100 { _ = publish(bus, "room-\(i)", "\(i)") }
        #expect(bus.roomCount == 101)
        let resumed = try #require(join(bus, "kept", since: first))
        #expect(resumed.recovered && resumed.replay.map(\.data) == [JSONFragment("2")])

        bus.subscribe(room: "kept")
        usleep(1_100_000)  // past the TTL and the 1 s minimum between sweeps
        _ = publish(bus, "trigger", "0")
        // Only the subscribed room and the one just published to remain.
        #expect(bus.roomCount == 2)
        let late = try #require(join(bus, "kept", since: first))
        #expect(!late.recovered && late.replay.isEmpty)
        let next = try #require(publish(bus, "kept", "3"))
        #expect(next.sequence == 1 && next.milliseconds != first.milliseconds, "a new history never continues the old one")
        #expect(join(bus, "kept", since: first)?.recovered == false)
    }

    @Test func withoutATTLHistoriesStay() throws {
        let bus = LocalRooms(historySize: 10, historyTTLMilliseconds: 0)
        let first = try #require(publish(bus, "r", "1"))
        _ = publish(bus, "r", "2")
        usleep(300_000)
        _ = publish(bus, "other", "0")
        let resumed = try #require(join(bus, "r", since: first))
        #expect(resumed.recovered && resumed.replay.count == 1)
        #expect(bus.roomCount == 2)
    }

    /// `data` of exactly `n` bytes (a JSON string), so a message's `historyCost` is `n + room + 128`.
    func payload(_ n: Int) -> String { "\"" + String(repeating: "x", count: n - 2) + "\"" }

    /// `--history-bytes`: a room keeps what fits in its byte budget, oldest dropped first; a resume into the
    /// dropped range is `recovered: false`, one after it replays exactly what is kept.
    @Test func perRoomByteBudgetKeepsTheNewestMessages() throws {
        let cost = 1000 + 1 + LocalRooms.historyOverheadBytesPerMessage
        let bus = LocalRooms(historySize: 1000, historyTTLMilliseconds: 0, historyBytes: 5 * cost, maxHistoryMemory: 0)
        let base = try #require(join(bus, "r", since: nil))
        var offsets: [StreamOffset] = []
        for _ in 0..<8 { offsets.append(try #require(publish(bus, "r", payload(1000)))) }
        #expect(bus.historyMemoryBytes == 5 * cost)
        let kept = try #require(join(bus, "r", since: offsets[2]))
        #expect(kept.recovered && kept.replay.map(\.offset) == Array(offsets[3...]))
        #expect(join(bus, "r", since: offsets[1])?.recovered == false, "message 3 was dropped: a gap")
        #expect(join(bus, "r", since: base.offset)?.recovered == false)
        #expect(bus.historyEvictions == 0, "per-room trimming is not a node-wide eviction")

        // A message larger than the room's budget is delivered but not kept.
        let before = try #require(publish(bus, "big", "1"))
        let big = try #require(publish(bus, "big", payload(6 * cost)))
        #expect(join(bus, "big", since: before)?.recovered == false)
        let atLatest = try #require(join(bus, "big", since: big))
        #expect(atLatest.recovered && atLatest.replay.isEmpty, "nothing was missed after the latest offset")
        #expect(bus.historyMemoryBytes == 5 * cost)
    }

    /// `--max-history-memory`: over the node budget, the least recently published room loses its oldest
    /// messages first, each counted as an eviction; a resume into an evicted range answers
    /// `recovered: false`, never a replay with a hole.
    @Test func nodeBudgetEvictsTheLeastRecentlyPublishedRoomsFirst() throws {
        let cost = 1000 + 1 + LocalRooms.historyOverheadBytesPerMessage
        let bus = LocalRooms(historySize: 1000, historyTTLMilliseconds: 0, historyBytes: 0, maxHistoryMemory: 6 * cost)
        var base: [String: StreamOffset] = [:]
        var offsets: [String: [StreamOffset]] = [:]
        for room in ["a", "b", "c", "d"] {
            base[room] = try #require(join(bus, room, since: nil)).offset
            for _ in 0..<2 { offsets[room, default: []].append(try #require(publish(bus, room, payload(1000)))) }
        }
        // a (published to first) lost both messages to make room for d's.
        #expect(bus.historyEvictions == 2)
        #expect(bus.historyMemoryBytes == 6 * cost)
        let a = try #require(join(bus, "a", since: base["a"]))
        #expect(!a.recovered && a.replay.isEmpty)
        let aLatest = try #require(join(bus, "a", since: offsets["a"]![1]))
        #expect(aLatest.recovered && aLatest.replay.isEmpty, "a client already past the evicted range missed nothing")
        for room in ["b", "c", "d"] {
            let r = try #require(join(bus, room, since: base[room]))
            #expect(r.recovered && r.replay.map(\.offset) == offsets[room]!, "\(room) is within budget")
        }

        // Publishing into b makes it the most recent: c (now the least recent) loses its oldest message.
        let b3 = try #require(publish(bus, "b", payload(1000)))
        #expect(bus.historyEvictions == 3)
        #expect(join(bus, "c", since: base["c"])?.recovered == false)
        let c = try #require(join(bus, "c", since: offsets["c"]![0]))
        #expect(c.recovered && c.replay.map(\.offset) == [offsets["c"]![1]])
        let b = try #require(join(bus, "b", since: base["b"]))
        #expect(b.recovered && b.replay.map(\.offset) == offsets["b"]! + [b3])

        // Seen through the role, as the gateway's /metrics does.
        let role: RoomBus = bus
        #expect(role.historyEvictions == 3 && role.historyMemoryBytes == 6 * cost)
    }

    /// Expired histories give their bytes back to the node budget.
    @Test func expiredHistoriesReleaseTheirBytes() throws {
        let bus = LocalRooms(historySize: 10, historyTTLMilliseconds: 200)
        for _ in 0..<3 { _ = publish(bus, "x", payload(1000)) }
        #expect(bus.historyMemoryBytes == 3 * (1000 + 1 + LocalRooms.historyOverheadBytesPerMessage))
        usleep(1_100_000)  // past the TTL and the 1 s minimum between sweeps
        _ = publish(bus, "y", "1")
        #expect(bus.historyMemoryBytes == 1 + 1 + LocalRooms.historyOverheadBytesPerMessage)
    }

    /// `--analytics-bytes`: the in-process analytics ring keeps the newest events that fit in its byte
    /// budget, as well as within its count (`maxLength`).
    @Test func analyticsRingIsCappedByBytes() throws {
        func event(_ i: Int, _ size: Int) -> AnalyticsEvent {
            AnalyticsEvent(user: "u", node: "n", room: nil, event: "e\(i)", data: JSONFragment(payload(size)), serverTimeMilliseconds: 0)
        }
        let cost = LocalAnalytics.cost(of: event(0, 1000))
        let ring = LocalAnalytics(maxBytes: 3 * cost)
        func recent() -> [String] {
            let box = Lock<[String]>([])
            ring.recentAnalytics(count: 100) { events in box.withLock { $0 = events.map(\.event) } }
            return box.withLock { $0 }
        }
        ring.appendAnalytics((0..<5).map { event($0, 1000) }, maxLength: 100)
        #expect(recent() == ["e2", "e3", "e4"])
        #expect(ring.analyticsMemoryBytes == 3 * cost)
        ring.appendAnalytics([event(5, 1000), event(6, 1000)], maxLength: 2)
        #expect(recent() == ["e5", "e6"], "the count cap still applies")
        ring.appendAnalytics([event(7, 4 * cost)], maxLength: 100)
        #expect(recent().isEmpty && ring.analyticsMemoryBytes == 0, "an event over the whole budget is not kept")
        let role: AnalyticsBus = ring
        ring.appendAnalytics([event(8, 10)], maxLength: 100)
        #expect(role.analyticsMemoryBytes == LocalAnalytics.cost(of: event(8, 10)))
    }
}
