@testable import ClusterBus
import Glibc
import Protocol
import Runtime
import Testing

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
        usleep(1_100_000)   // past the TTL and the 1 s minimum between sweeps
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
}
