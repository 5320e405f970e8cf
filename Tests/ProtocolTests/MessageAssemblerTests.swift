import Testing

@testable import Protocol

/// Message-level rules (RFC 6455 §5.4–§5.6, §5.5.1, §7.4, §8.1) through the reader.
@Suite struct MessageAssemblerTests {
    @Test func fragmentedText() {
        let input = clientFrame(.text, "Hel", fin: false) + clientFrame(.continuation, "lo")
        #expect(feed(input) == Outcome(events: [.text("Hello")]))
    }

    @Test func threeFragmentsWithEmptyMiddle() {
        let input = clientFrame(.binary, [1, 2], fin: false) + clientFrame(.continuation, [], fin: false) + clientFrame(.continuation, [3])
        #expect(feed(input) == Outcome(events: [.binary([1, 2, 3])]))
    }

    /// Cases C01: a ping between the fragments is delivered at once, the message after.
    @Test func controlFramesBetweenFragments() {
        let input = hex("01 87 00000000 48656c6c6f2c20 89 85 00000000 6d69642d31 80 85 00000000 776f726c64")
        #expect(feed(input) == Outcome(events: [.ping(Array("mid-1".utf8)), .text("Hello, world")]))
        let withClose = clientFrame(.text, "a", fin: false) + clientFrame(.pong, "p") + clientFrame(.close, [0x03, 0xE8])
        #expect(feed(withClose) == Outcome(events: [.pong([0x70]), .close(1000, "")]))
    }

    @Test func unexpectedContinuation() {
        #expect(feed(clientFrame(.continuation, "x")) == Outcome(error: .unexpectedContinuation))
        let afterComplete = clientFrame(.text, "a") + clientFrame(.continuation, "b")
        #expect(feed(afterComplete) == Outcome(events: [.text("a")], error: .unexpectedContinuation))
    }

    @Test func expectedContinuation() {
        let input = clientFrame(.text, "a", fin: false) + clientFrame(.text, "b")
        #expect(feed(input) == Outcome(error: .expectedContinuation))
        let binary = clientFrame(.text, "a", fin: false) + clientFrame(.binary, "b", fin: false)
        #expect(feed(binary) == Outcome(error: .expectedContinuation))
    }

    @Test func sizeLimitOnASingleFrame() {
        let limit = 16
        #expect(feed(clientFrame(.binary, [UInt8](repeating: 0, count: 16)), maxMessageSize: limit).events.count == 1)
        #expect(
            feed(clientFrame(.binary, [UInt8](repeating: 0, count: 17)), maxMessageSize: limit)
                == Outcome(error: .messageTooLarge(limit: 16)))
    }

    /// The limit fires on the header alone: no payload byte has been sent yet.
    @Test func sizeLimitBeforeAnyPayload() {
        let header = Array(clientFrame(.binary, [UInt8](repeating: 0, count: 2000)).prefix(8))
        let (outcome, _) = feed([header], maxMessageSize: 1000)
        #expect(outcome == Outcome(error: .messageTooLarge(limit: 1000)))
    }

    @Test func sizeLimitAcrossFragments() {
        let input =
            clientFrame(.text, "aaaaaaaaaa", fin: false) + clientFrame(.continuation, "bbbbbb", fin: false)
            + clientFrame(.continuation, "c")
        #expect(feed(input, maxMessageSize: 16) == Outcome(error: .messageTooLarge(limit: 16)))
        #expect(feed(input, maxMessageSize: 17) == Outcome(events: [.text("aaaaaaaaaabbbbbbc")]))
    }

    @Test func controlFramesIgnoreTheMessageLimit() {
        #expect(feed(clientFrame(.ping, [UInt8](repeating: 1, count: 100)), maxMessageSize: 10).events.count == 1)
    }

    /// Cases C02: κόσμε split inside characters across fragments.
    @Test func utf8SplitAcrossFragments() {
        let input = hex("01 81 00000000 ce 00 82 00000000 bae1 80 88 00000000 bdb9cf83cebcceb5")
        #expect(feed(input) == Outcome(events: [.text("κόσμε")]))
    }

    @Test func invalidUTF8InOneFrame() {
        #expect(feed(clientFrame(.text, hex("ce ba ff"))) == Outcome(error: .invalidUTF8))
        #expect(feed(clientFrame(.text, hex("ed a0 80"))) == Outcome(error: .invalidUTF8))  // surrogate
        #expect(feed(clientFrame(.text, hex("c0 af"))) == Outcome(error: .invalidUTF8))  // overlong '/'
        #expect(feed(clientFrame(.text, hex("f4 90 80 80"))) == Outcome(error: .invalidUTF8))  // > U+10FFFF
        // Binary messages are not checked.
        #expect(feed(clientFrame(.binary, hex("ff"))) == Outcome(events: [.binary([0xFF])]))
    }

    /// Fail fast: the bad fragment is rejected even though the message is not finished.
    @Test func invalidUTF8InAnEarlyFragment() {
        let input = clientFrame(.text, hex("ce ba"), fin: false) + clientFrame(.continuation, hex("e1 ff"), fin: false)
        let (outcome, _) = feed([input])
        #expect(outcome == Outcome(error: .invalidUTF8))
    }

    /// Fail fast inside one frame (Autobahn 6.4.x): a frame sent in chops; the error comes with
    /// the chop holding the impossible byte, before the rest of the frame has arrived.
    @Test func invalidUTF8InAPartialFrame() {
        // "κόσμε" then ED A0 80 (a surrogate) then "edited", as one 20-byte text frame.
        let payload = hex("ce ba e1 bd b9 cf 83 ce bc ce b5") + hex("ed a0 80") + Array("edited".utf8)
        let frame = clientFrame(.text, payload)
        let header = 6
        let goodPart = Array(frame[..<(header + 12)])  // header + κόσμε + ED
        var reader = WebSocketReader()
        var copy = goodPart
        #expect(throws: Never.self) { try copy.withUnsafeMutableBytes { try reader.feed($0) { _ in true } } }
        var bad = [frame[header + 12]]  // A0: no longer a possible prefix
        #expect(throws: ProtocolError.invalidUTF8) { try bad.withUnsafeMutableBytes { try reader.feed($0) { _ in true } } }
    }

    @Test func truncatedUTF8AtTheEndOfTheMessage() {
        #expect(feed(clientFrame(.text, hex("41 ce"))) == Outcome(error: .invalidUTF8))
        let fragmented = clientFrame(.text, hex("41"), fin: false) + clientFrame(.continuation, hex("e1 bd"))
        #expect(feed(fragmented) == Outcome(error: .invalidUTF8))
    }

    // MARK: close frames

    @Test func closeBodies() {
        #expect(feed(hex("88 80 00000000")) == Outcome(events: [.close(nil, "")]))
        #expect(feed(hex("88 85 00000000 03e8627965")) == Outcome(events: [.close(1000, "bye")]))
        #expect(feed(hex("88 82 00000000 0fa1")) == Outcome(events: [.close(4001, "")]))
        #expect(feed(hex("88 82 00000000 03f4")) == Outcome(events: [.close(1012, "")]))
        #expect(feed(hex("88 81 00000000 03")) == Outcome(error: .invalidClosePayload))
        #expect(feed(clientFrame(.close, hex("03 e8 ce"))) == Outcome(error: .invalidUTF8))
        #expect(feed(clientFrame(.close, hex("03 e8 ce ba"))) == Outcome(events: [.close(1000, "κ")]))
    }

    /// Cases C06: every invalid code fails with invalidCloseCode (→ 1002), never echoed.
    @Test(arguments: [0, 999, 1004, 1005, 1006, 1015, 1016, 2000, 2999, 5000, 65535] as [UInt16])
    func invalidCloseCodes(code: UInt16) {
        let outcome = feed(clientFrame(.close, [UInt8(code >> 8), UInt8(code & 0xFF)]))
        #expect(outcome == Outcome(error: .invalidCloseCode(code)))
        #expect(ProtocolError.invalidCloseCode(code).closeCode == .protocolError)
    }

    @Test(arguments: [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 4001, 4999] as [UInt16])
    func validCloseCodes(code: UInt16) {
        #expect(feed(clientFrame(.close, [UInt8(code >> 8), UInt8(code & 0xFF)])) == Outcome(events: [.close(code, "")]))
    }

    @Test func closeSplitAcrossFeeds() {
        let frame = clientFrame(.close, FrameEncoder.closePayload(code: .goingAway, reason: "bye now"))
        #expect(feed(frame.map { [$0] }).0 == Outcome(events: [.close(1001, "bye now")]))
    }

    @Test func assemblerIsIdleAfterEachMessage() {
        var assembler = MessageAssembler(maxMessageSize: 100)
        #expect(assembler.isIdle)
        var payload: [UInt8] = Array("abc".utf8)
        payload.withUnsafeMutableBytes { raw in
            let chunk = FrameChunk(opcode: .text, fin: false, payloadLength: 3, bytes: raw, isStart: true, isEnd: true)
            #expect(throws: Never.self) { _ = try assembler.handle(chunk) { _ in true } }
        }
        #expect(!assembler.isIdle)
    }
}
