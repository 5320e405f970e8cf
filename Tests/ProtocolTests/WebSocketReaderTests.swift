import Testing

@testable import Protocol

@Suite struct WebSocketReaderTests {
    // MARK: RFC 6455 §5.7 examples

    @Test func singleFrameUnmaskedText() {
        #expect(feed(hex("81 05 48 65 6c 6c 6f"), role: .client) == Outcome(events: [.text("Hello")]))
    }

    @Test func singleFrameMaskedText() {
        #expect(feed(hex("81 85 37 fa 21 3d 7f 9f 4d 51 58"), role: .server) == Outcome(events: [.text("Hello")]))
    }

    @Test func fragmentedUnmaskedText() {
        #expect(feed(hex("01 03 48 65 6c 80 02 6c 6f"), role: .client) == Outcome(events: [.text("Hello")]))
    }

    @Test func pingAndMaskedPong() {
        #expect(feed(hex("89 05 48 65 6c 6c 6f"), role: .client) == Outcome(events: [.ping(Array("Hello".utf8))]))
        #expect(feed(hex("8a 85 37 fa 21 3d 7f 9f 4d 51 58"), role: .server) == Outcome(events: [.pong(Array("Hello".utf8))]))
    }

    @Test func binary256And64KiB() {
        let small = [UInt8](repeating: 0xAB, count: 256)
        #expect(feed(hex("82 7E 0100") + small, role: .client) == Outcome(events: [.binary(small)]))
        let large = (0..<65536).map { UInt8(truncatingIfNeeded: $0) }
        #expect(feed(hex("82 7F 0000000000010000") + large, role: .client) == Outcome(events: [.binary(large)]))
    }

    // MARK: every split point

    /// Text fragment + ping + continuation + binary + close, cut at every byte and one byte at a time.
    @Test func everySplitPointGivesTheSameEvents() {
        let input =
            clientFrame(.text, "κό", fin: false, key: 0x0102_0304) + clientFrame(.ping, "p1", key: 0x1111_1111)
            + clientFrame(.continuation, "σμε", key: 0xFFFF_FFFF) + clientFrame(.binary, [UInt8](repeating: 9, count: 300), key: 0x1234_5678)
            + clientFrame(.close, FrameEncoder.closePayload(code: .normalClosure, reason: "done"))
        let expected = Outcome(events: [.ping(Array("p1".utf8)), .text("κόσμε"), .binary([UInt8](repeating: 9, count: 300)), .close(1000, "done")])
        #expect(feed(input) == expected)
        for pieces in allSplits(input) {
            let (outcome, reader) = feed(pieces)
            #expect(outcome == expected, "split \(pieces.map(\.count).prefix(3))")
            #expect(reader.isIdle && reader.bufferedCapacity == 0)
        }
    }

    @Test func everySplitPointForErrors() {
        let input = clientFrame(.text, "ok") + clientFrame(.text, hex("ce ba ed a0 80 41"))
        for pieces in allSplits(input) {
            #expect(feed(pieces).0 == Outcome(events: [.text("ok")], error: .invalidUTF8))
        }
        let tooBig = clientFrame(.ping, "x") + clientFrame(.binary, [UInt8](repeating: 0, count: 300))
        for pieces in allSplits(tooBig) {
            #expect(feed(pieces, maxMessageSize: 200).0 == Outcome(events: [.ping([0x78])], error: .messageTooLarge(limit: 200)))
        }
    }

    @Test func clientRoleEverySplit() {
        let input =
            FrameEncoder.frame(opcode: .text, payload: Array("Hel".utf8), fin: false)
            + FrameEncoder.frame(opcode: .pong, payload: [])
            + FrameEncoder.frame(opcode: .continuation, payload: Array("lo".utf8))
        for pieces in allSplits(input) {
            #expect(feed(pieces, role: .client).0 == Outcome(events: [.pong([]), .text("Hello")]))
        }
    }

    // MARK: zero copy and memory

    @Test func completeFramesAreDeliveredInPlace() throws {
        var input = clientFrame(.text, "one") + clientFrame(.ping, "two") + clientFrame(.binary, [1, 2, 3])
        var reader = WebSocketReader()
        var inside: [Bool] = []
        try input.withUnsafeMutableBytes { raw in
            let range = UInt(bitPattern: raw.baseAddress!)..<UInt(bitPattern: raw.baseAddress! + raw.count)
            try reader.feed(raw) { event in
                switch event {
                case .text(let b), .binary(let b), .ping(let b), .pong(let b):
                    inside.append(range.contains(UInt(bitPattern: b.baseAddress!)))
                case .close: break
                }
                return true
            }
        }
        #expect(inside == [true, true, true])
        #expect(reader.bufferedCapacity == 0)
    }

    /// A header at the end of one read and its whole payload in the next: still no copy.
    @Test func payloadInTheNextReadIsDeliveredInPlace() throws {
        let frame = clientFrame(.binary, [UInt8](repeating: 5, count: 300))
        var reader = WebSocketReader()
        var header = Array(frame.prefix(8))
        try header.withUnsafeMutableBytes { raw in
            try reader.feed(raw) { _ in
                Issue.record("early event"); return true
            }
        }
        var payload = Array(frame.dropFirst(8))
        var inPlace = false
        try payload.withUnsafeMutableBytes { raw in
            try reader.feed(raw) { event in
                if case .binary(let b) = event { inPlace = b.baseAddress == UnsafeRawPointer(raw.baseAddress!) && b.count == 300 }
                return true
            }
        }
        #expect(inPlace)
        #expect(reader.bufferedCapacity == 0)
    }

    @Test func idleReaderHoldsNoHeapMemory() {
        let fragmented = clientFrame(.binary, [UInt8](repeating: 1, count: 5000), fin: false) + clientFrame(.continuation, [2])
        let (outcome, reader) = feed([Array(fragmented.prefix(100)), Array(fragmented.dropFirst(100))])
        #expect(outcome.events.count == 1)
        #expect(reader.isIdle)
        #expect(reader.bufferedCapacity == 0)
        #expect(MemoryLayout<WebSocketReader>.size < 256)
    }

    @Test func partialStateIsNotIdle() {
        let frame = clientFrame(.text, "Hello")
        #expect(!feed([Array(frame.prefix(1))]).1.isIdle)
        #expect(!feed([Array(frame.prefix(8))]).1.isIdle)
        #expect(!feed([clientFrame(.text, "a", fin: false)]).1.isIdle)
        #expect(feed([frame]).1.isIdle)
    }

    /// Declared 2^63-1 bytes with no effective limit: the reservation is capped, not the declared size.
    @Test func hugeDeclarationNeverAllocates() {
        let (outcome, reader) = feed([hex("82 ff 7fffffffffffffff 00000000"), hex("68")], maxMessageSize: .max)
        // With no limit to stop it, the frame is streamed: only the bytes received are buffered.
        #expect(outcome.error == nil && outcome.events.isEmpty)
        #expect(reader.bufferedCapacity <= 64 * 1024 + 64)  // + allocator rounding
    }

    // MARK: stopping

    @Test func returningFalseStopsTheRestOfTheInput() throws {
        var input = clientFrame(.text, "a") + clientFrame(.text, "b") + clientFrame(.text, "c")
        var reader = WebSocketReader()
        var seen: [Event] = []
        try input.withUnsafeMutableBytes { raw in
            try reader.feed(raw) {
                seen.append(Event($0)); return seen.count < 2
            }
        }
        #expect(seen == [.text("a"), .text("b")])
    }

    @Test func nothingIsReadAfterAClose() {
        let input = clientFrame(.close, [0x03, 0xE8]) + clientFrame(.text, "after") + hex("ff ff")
        let (outcome, reader) = feed([input, clientFrame(.text, "later")])
        #expect(outcome == Outcome(events: [.close(1000, "")]))
        #expect(reader.receivedClose)
    }

    @Test func aFailedReaderKeepsFailing() {
        let (outcome, _) = feed([hex("81 02 68 69"), clientFrame(.text, "fine")])
        #expect(outcome == Outcome(error: .unmaskedClientFrame))
    }

    @Test func manyMessagesInOneInput() {
        var input: [UInt8] = []
        for i in 0..<1000 { input += clientFrame(.text, "message \(i)", key: UInt32(i)) }
        let outcome = feed(input)
        #expect(outcome.events.count == 1000)
        #expect(outcome.events.last == .text("message 999"))
    }
}
