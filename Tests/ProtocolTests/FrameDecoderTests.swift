import Testing

@testable import Protocol

/// Per-frame rules (RFC 6455 §5.1, §5.2, §5.5), each with the bytes a peer would send.
/// Client frames use the mask key 00 00 00 00 where the payload does not matter.
@Suite struct FrameDecoderTests {
    /// Between feeds the decoder keeps a partial header and a few counters: no heap, small inline.
    @Test func stateIsSmall() {
        #expect(MemoryLayout<FrameDecoder>.size <= 64)
    }

    @Test func unmaskedClientFrame() {
        #expect(feed(hex("81 02 68 69"), role: .server) == Outcome(error: .unmaskedClientFrame))
    }

    @Test func maskedServerFrame() {
        #expect(feed(hex("81 82 00 00 00 00 68 69"), role: .client) == Outcome(error: .maskedServerFrame))
    }

    @Test(arguments: ["c1 82 00000000 6869", "a2 82 00000000 6869", "99 82 00000000 6869", "f1 80 00000000"])
    func reservedBits(frame: String) {
        #expect(feed(hex(frame)) == Outcome(error: .reservedBitsSet))
    }

    @Test(arguments: [0x3, 0x4, 0x5, 0x6, 0x7, 0xB, 0xC, 0xD, 0xE, 0xF] as [UInt8])
    func reservedOpcodes(op: UInt8) {
        #expect(feed([0x80 | op, 0x81, 0, 0, 0, 0, 0x78]) == Outcome(error: .reservedOpcode(op)))
    }

    /// Cases C04: binary, declared length 2^63+5, 5 real bytes. Must fail without allocating.
    @Test func payloadLengthTopBit() {
        #expect(feed(hex("82 ff 8000000000000005 00000000 68656c6c6f")) == Outcome(error: .payloadLengthTopBitSet))
        #expect(feed(hex("82 7f 8000000000000005 68656c6c6f"), role: .client) == Outcome(error: .payloadLengthTopBitSet))
        // Largest legal declaration: rejected by the size limit before any payload is buffered.
        #expect(feed(hex("82 ff 7fffffffffffffff 00000000 68")) == Outcome(error: .messageTooLarge(limit: 1 << 20)))
    }

    @Test func controlFrameTooLong() {
        // Ping with the 16-bit length form (126 bytes).
        #expect(feed(hex("89 fe 00 7e 00000000")) == Outcome(error: .controlFrameTooLong))
        #expect(feed(hex("88 ff 0000000000000002 00000000 03e8")) == Outcome(error: .controlFrameTooLong))
        // 125 is fine.
        let ping125 = clientFrame(.ping, [UInt8](repeating: 0x61, count: 125))
        #expect(feed(ping125) == Outcome(events: [.ping([UInt8](repeating: 0x61, count: 125))]))
    }

    /// Cases C16: a fragmented ping.
    @Test func fragmentedControlFrame() {
        #expect(feed(hex("09 82 00000000 6162 80 82 00000000 6364")) == Outcome(error: .fragmentedControlFrame))
        #expect(feed(hex("08 80 00000000")) == Outcome(error: .fragmentedControlFrame))
    }

    /// Rules decidable from the first two bytes fail before the rest of the header arrives.
    @Test func failsOnTheFirstTwoBytes() {
        #expect(feed(hex("c1 82")) == Outcome(error: .reservedBitsSet))
        #expect(feed(hex("81 02")) == Outcome(error: .unmaskedClientFrame))
        #expect(feed([[0x89], [0xFE]]).0 == Outcome(error: .controlFrameTooLong))
    }

    @Test func lengthForms() {
        for length in [0, 125, 126, 65535, 65536] {
            let payload = [UInt8](repeating: 0x42, count: length)
            #expect(feed(clientFrame(.binary, payload)) == Outcome(events: [.binary(payload)]), "length \(length)")
        }
        // A non-minimal length encoding (§5.2 asks senders for the minimal form) is still read.
        #expect(feed(hex("82 fe 0002 00000000 6869")) == Outcome(events: [.binary(Array("hi".utf8))]))
    }

    /// The decoder alone: one start chunk as soon as the header is complete, then payload chunks.
    @Test func chunksOfASplitFrame() throws {
        var decoder = FrameDecoder(role: .server)
        var frame = clientFrame(.text, "Hello")
        var chunks: [(Bool, Bool, [UInt8])] = []
        try frame.withUnsafeMutableBytes { raw in
            for range in [0..<1, 1..<6, 6..<8, 8..<11] {
                let piece = UnsafeMutableRawBufferPointer(rebasing: raw[range])
                var offset = 0
                while let chunk = try decoder.next(piece, &offset) {
                    chunks.append((chunk.isStart, chunk.isEnd, Array(chunk.bytes)))
                    #expect(chunk.payloadLength == 5 && chunk.opcode == .text && chunk.fin)
                }
                #expect(offset == piece.count)
            }
        }
        #expect(chunks.map(\.0) == [true, false, false])
        #expect(chunks.map(\.1) == [false, false, true])
        #expect(chunks.map(\.2) == [[], Array("He".utf8), Array("llo".utf8)])
        #expect(decoder.isIdle)
    }
}
