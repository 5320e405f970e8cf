import Testing

@testable import Protocol

@Suite struct EngineIOPollingOutboxTests {
    private func text(_ result: EngineIOPollingOutbox.PollResult) -> String? {
        if case .respond(let body) = result { return String(decoding: body, as: UTF8.self) }
        return nil
    }

    @Test func queuedPacketsGoToTheNextPoll() {
        var outbox = EngineIOPollingOutbox()
        #expect(outbox.enqueue(.message(Array(#"0{"sid":"s"}"#.utf8))) == .queued)
        #expect(outbox.enqueue(.ping([])) == .queued)
        #expect(outbox.enqueue(.binary([1, 2, 3])) == .queued)
        #expect(outbox.queuedBytes == EngineIOPayloadDecoder.encode([.message(Array(#"0{"sid":"s"}"#.utf8)), .ping([]), .binary([1, 2, 3])]).count)
        #expect(text(outbox.poll()) == "40{\"sid\":\"s\"}\u{1e}2\u{1e}bAQID")
        #expect(outbox.queuedBytes == 0)
    }

    @Test func aHeldPollIsAnsweredByTheNextPacket() {
        var outbox = EngineIOPollingOutbox()
        #expect(outbox.poll() == .hold)
        #expect(outbox.pollHeld)
        #expect(outbox.poll() == .duplicatePoll)
        #expect(outbox.enqueue(.noop) == .respond(Array("6".utf8)))
        #expect(!outbox.pollHeld)
        #expect(outbox.enqueue(.ping([])) == .queued)
        outbox = EngineIOPollingOutbox()
        #expect(outbox.poll() == .hold)
        outbox.pollAbandoned()
        #expect(outbox.enqueue(.ping([])) == .queued)
    }

    @Test func boundedAndDrainedOnUpgrade() {
        var outbox = EngineIOPollingOutbox(maxQueuedBytes: 10)
        #expect(outbox.enqueue(.message(Array("12345678".utf8))) == .queued)  // 9 bytes
        #expect(outbox.enqueue(.ping([])) == .overflow)  // 9 + separator + 1 = 11
        #expect(outbox.queuedBytes == 9)
        #expect(outbox.takeAll() == [.message(Array("12345678".utf8))])
        #expect(outbox.enqueue(.binary([0, 0, 0, 0])) == .queued)  // b + 8 base64 characters = 9
        #expect(outbox.queuedBytes == 9)
    }
}
