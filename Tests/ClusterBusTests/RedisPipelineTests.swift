import Testing

@testable import ClusterBus

/// The sans-I/O side of our Redis connection: replies matched to commands in order, pushes told apart,
/// protocol errors typed; every input fed whole, byte at a time and in every two-piece split.
@Suite struct RedisPipelineTests {
    /// What one feeding produced, in arrival order.
    enum Event: Equatable {
        case reply(Int, RedisReply?)
        case push(RedisReply)
        case subscriptionError(String)
    }

    final class Harness {
        let pipeline = RedisPipeline()
        var events: [Event] = []
        var next = 0
        init() {
            pipeline.onPush = { [unowned self] r in events.append(.push(RedisReply(copying: r))) }
            pipeline.onSubscriptionError = { [unowned self] e in events.append(.subscriptionError(e)) }
        }
        func expect() {
            let n = next
            next += 1
            pipeline.expectReply { [unowned self] r in events.append(.reply(n, r)) }
        }
        func feed(_ pieces: [ArraySlice<UInt8>]) throws {
            for p in pieces {
                let bytes = Array(p)
                try bytes.withUnsafeBytes { try pipeline.feed($0) }
            }
        }
    }

    /// Whole; one byte at a time; every cut in two.
    static func splits(_ bytes: [UInt8]) -> [[ArraySlice<UInt8>]] {
        var out: [[ArraySlice<UInt8>]] = [[bytes[...]], bytes.indices.map { bytes[$0...$0] }]
        for cut in 1..<bytes.count { out.append([bytes[..<cut], bytes[cut...]]) }
        return out
    }

    /// Runs `setup` then feeds `wire` in every split; every split must give the same events, which are returned.
    func run(_ wire: String, setup: (Harness) -> Void) throws -> [Event] {
        var first: [Event]?
        for pieces in Self.splits(Array(wire.utf8)) {
            let h = Harness()
            setup(h)
            try h.feed(pieces)
            if let f = first { #expect(h.events == f, "split \(pieces.map(\.count))") } else { first = h.events }
            #expect(h.pipeline.pendingReplies == 0)
        }
        return first ?? []
    }

    @Test func pipelinedRepliesCompleteInCommandOrder() throws {
        let wire = "+OK\r\n$3\r\nabc\r\n:42\r\n*2\r\n$1\r\na\r\n$-1\r\n-NOSCRIPT No matching script\r\n$0\r\n\r\n"
        let events = try run(wire) { h in for _ in 0..<6 { h.expect() } }
        #expect(
            events == [
                .reply(0, .status("OK")), .reply(1, .string(Array("abc".utf8))), .reply(2, .integer(42)),
                .reply(3, .array([.string([0x61]), .null])), .reply(4, .error("NOSCRIPT No matching script")), .reply(5, .string([]))
            ])
    }

    @Test func subscriptionConfirmationsAndMessagesArePushes() throws {
        let wire =
            "+OK\r\n"
            + "*3\r\n$9\r\nsubscribe\r\n$1\r\na\r\n:1\r\n*3\r\n$9\r\nsubscribe\r\n$1\r\nb\r\n:2\r\n"
            + "*3\r\n$7\r\nmessage\r\n$1\r\na\r\n$2\r\nhi\r\n"
            + "*4\r\n$8\r\npmessage\r\n$2\r\na*\r\n$2\r\nab\r\n$1\r\nx\r\n"
        let events = try run(wire) { h in
            h.expect()
            h.pipeline.expectSubscription(verb: "SUBSCRIBE", channels: 2)
        }
        func a(_ items: [String]) -> RedisReply { .array(items.map { .string(Array($0.utf8)) }) }
        #expect(
            events == [
                .reply(0, .status("OK")),
                .push(.array([.string(Array("subscribe".utf8)), .string([0x61]), .integer(1)])),
                .push(.array([.string(Array("subscribe".utf8)), .string([0x62]), .integer(2)])),
                .push(a(["message", "a", "hi"])), .push(a(["pmessage", "a*", "ab", "x"]))
            ])
    }

    @Test func shardedPushesAndUnsolicitedUnsubscribeDoNotConsumeWaitingCommands() throws {
        // Redis 7 sends `sunsubscribe` on its own when the channel's slot moves away: it must not count as the
        // confirmation of the SSUBSCRIBE still waiting.
        let wire =
            "*3\r\n$12\r\nsunsubscribe\r\n$1\r\nz\r\n:0\r\n"
            + "*3\r\n$8\r\nsmessage\r\n$1\r\nq\r\n$1\r\n1\r\n"
            + "*3\r\n$10\r\nssubscribe\r\n$1\r\nq\r\n:1\r\n"
        let h = Harness()
        h.pipeline.expectSubscription(verb: "SSUBSCRIBE", channels: 1)
        h.pipeline.expectSubscription(verb: "SSUBSCRIBE", channels: 1)
        try h.feed([Array(wire.utf8)[...]])
        #expect(h.events.count == 3)
        #expect(h.pipeline.pendingReplies == 1, "only the ssubscribe confirmation settles a waiting SSUBSCRIBE")
    }

    @Test func anErrorAnswerToASubscriptionIsReportedNotPushed() throws {
        let events = try run("-MOVED 3999 127.0.0.1:7001\r\n+OK\r\n") { h in
            h.pipeline.expectSubscription(verb: "SSUBSCRIBE", channels: 3)
            h.expect()
        }
        #expect(events == [.subscriptionError("MOVED 3999 127.0.0.1:7001"), .reply(0, .status("OK"))])
    }

    @Test func pushShapedAnswersBeforeAnySubscriptionAreReplies() throws {
        let events = try run("*3\r\n$7\r\nmessage\r\n$1\r\na\r\n$1\r\nb\r\n") { h in h.expect() }
        #expect(events == [.reply(0, .array([.string(Array("message".utf8)), .string([0x61]), .string([0x62])]))])
    }

    @Test func failAllCompletesWaitingCommandsWithNilInOrder() throws {
        let h = Harness()
        for _ in 0..<3 { h.expect() }
        try h.feed([Array("+OK\r\n+O".utf8)[...]])
        h.pipeline.failAll()
        #expect(h.events == [.reply(0, .status("OK")), .reply(1, nil), .reply(2, nil)])
        #expect(h.pipeline.pendingReplies == 0)
        h.pipeline.failAll()
        #expect(h.events.count == 3, "completions run once")
    }

    @Test func aMalformedStreamIsATypedErrorAndStaysFailed() throws {
        for bad in ["!x\r\n", "$abc\r\n", ":12a\r\n", "*-5x\r\n"] {
            let h = Harness()
            h.expect()
            h.expect()
            #expect(throws: RedisProtocolError.self) { try h.feed([Array(("+OK\r\n" + bad).utf8)[...]]) }
            #expect(h.events == [.reply(0, .status("OK"))], "\(bad)")
            #expect(throws: RedisProtocolError.self) { try h.feed([Array("+OK\r\n".utf8)[...]]) }
            h.pipeline.failAll()
            #expect(h.events == [.reply(0, .status("OK")), .reply(1, nil)])
        }
    }

    @Test func unaskedRepliesAreDropped() throws {
        let h = Harness()
        try h.feed([Array("+OK\r\n:1\r\n".utf8)[...]])
        #expect(h.events.isEmpty)
        h.expect()
        try h.feed([Array("+next\r\n".utf8)[...]])
        #expect(h.events == [.reply(0, .status("next"))])
    }

    @Test func manyRepliesInOneBuffer() throws {
        let h = Harness()
        for _ in 0..<1000 { h.expect() }
        try h.feed([Array(String(repeating: ":7\r\n", count: 1000).utf8)[...]])
        #expect(h.events.count == 1000)
        #expect(h.events.last == .reply(999, .integer(7)))
        #expect(h.pipeline.pendingReplies == 0)
    }
}
