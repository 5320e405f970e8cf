import Protocol
import Runtime
import Testing

@testable import ClusterBus

/// The server API's bus role in process: merging node answers for paging, the command's JSON, LocalControl,
/// and LocalRooms' history reads.
@Suite struct ControlTests {
    @Test func mergedItemsSumNamesAcrossNodesAndPageInByteOrder() {
        let o = ControlOutcome(
            answers: [
                ControlAnswer(node: "a", affected: 1, items: [NamedCount(name: "b", count: 2), NamedCount(name: "c", count: 1)], more: true),
                ControlAnswer(node: "b", affected: 2, items: [NamedCount(name: "B", count: 1), NamedCount(name: "b", count: 3)], more: false)
            ], expectedNodes: 3)
        #expect(o.affected == 3)
        let (items, more) = o.mergedItems(limit: 2)
        #expect(items == [NamedCount(name: "B", count: 1), NamedCount(name: "b", count: 5)])
        #expect(more)
        let all = o.mergedItems(limit: 10)
        #expect(all.items.count == 3 && all.more, "a node said it had more")
        #expect(ControlOutcome(answers: [], expectedNodes: 0).mergedItems(limit: 5) == ([], false))
    }

    @Test func commandJSONRoundTrips() throws {
        let c = ControlCommand(kind: .presenceUsers, room: "r", after: "u1", limit: 10)
        let text = String(decoding: c.encoded(), as: UTF8.self)
        #expect(text == #"{"after":"u1","kind":"presence_users","limit":10,"room":"r"}"#)
        #expect(ControlCommand.decode(c.encoded()) == c)
        #expect(ControlCommand.decode(Array(#"{"kind":"explode"}"#.utf8)) == nil)
        #expect(ControlCommand.decode(Array("[".utf8)) == nil)
    }

    @Test func localControlRunsTheHandlerOnce() {
        let control = LocalControl()
        let box = Lock<ControlOutcome?>(nil)
        control.sendControl(ControlCommand(kind: .disconnect, user: "u"), timeoutMilliseconds: 10) { r in box.withLock { $0 = try? r.get() } }
        #expect(box.withLock { $0 } == ControlOutcome(answers: [], expectedNodes: 0), "no handler: nobody to ask")
        control.setControlHandler { cmd, reply in reply(ControlAnswer(node: "n", affected: cmd.user == "u" ? 2 : 0)) }
        box.withLock { $0 = nil }
        control.sendControl(ControlCommand(kind: .disconnect, user: "u"), timeoutMilliseconds: 10) { r in box.withLock { $0 = try? r.get() } }
        #expect(box.withLock { $0 }?.affected == 2)
    }

    @Test func localHistoryPagesBothWays() throws {
        let bus = LocalRooms(historySize: 5)
        let stored = Lock<[StreamOffset]>([])
        for i in 1...7 {
            bus.publish(room: "r", data: JSONFragment("\(i)"), idempotencyKey: nil) { r in if let o = try? r.get() { stored.withLock { $0.append(o) } } }
        }
        let offsets = stored.withLock { $0 }
        func page(_ from: StreamOffset?, _ desc: Bool, _ limit: Int) -> Result<HistoryPage, BusError>? {
            let box = Lock<Result<HistoryPage, BusError>?>(nil)
            bus.history(room: "r", from: from, newestFirst: desc, limit: limit) { r in box.withLock { $0 = r } }
            return box.withLock { $0 }
        }
        let data = { (r: Result<HistoryPage, BusError>?) in (try? r?.get())?.messages.map(\.data.description) ?? [] }
        #expect(data(page(nil, true, 2)) == ["7", "6"])
        #expect(data(page(offsets[5], true, 10)) == ["5", "4", "3"], "history keeps 5: 3...7")
        #expect(data(page(nil, false, 2)) == ["3", "4"])
        #expect(data(page(offsets[3], false, 10)) == ["5", "6", "7"])
        #expect(data(page(offsets[6], false, 10)) == [])
        let foreign = StreamOffset(epoch: "abc", milliseconds: 1, sequence: 1)
        #expect(page(foreign, true, 1).map { if case .failure(.invalid) = $0 { true } else { false } } == true)
        let none = Lock<Int>(-1)
        bus.history(room: "never", from: nil, newestFirst: true, limit: 5) { r in none.withLock { $0 = (try? r.get())?.messages.count ?? -2 } }
        #expect(none.withLock { $0 } == 0)
    }
}
