import Testing

@testable import Protocol

/// WebSocketReader with permessage-deflate: compressed messages inflated transparently, RSV1 rules,
/// limits on the inflated size (C14, C39 h, C40).
@Suite struct DeflateReaderTests {
    let hello = hex("f2 48 cd c9 c9 07 00")

    // C39 (h): the RFC 7692 §7.2.3.1 frame `c1 87 00000000 f248cdc9c90700` reads as "Hello".
    @Test func helloFrame() {
        #expect(feed(hex("c1 87 00000000 f248cdc9c90700"), deflate: Inflater()) == Outcome(events: [.text("Hello")]))
        // §7.2.3.1's fragmented form: `41 03 f2 48 cd` then `80 04 c9 c9 07 00` (unmasked, client role).
        #expect(feed(hex("41 03 f2 48 cd 80 04 c9 c9 07 00"), role: .client, deflate: Inflater()) == Outcome(events: [.text("Hello")]))
    }

    /// Compressed and plain messages, fragmented or not, with a ping in between, cut at every byte.
    @Test func everySplitPoint() {
        let json = chatJSON(size: 600)
        let binary = [UInt8](repeating: 3, count: 400)
        let deflater = Deflater()
        let input =
            compressedClientFrames(.text, deflater.compress(json), fragments: 3)
            + clientFrame(.ping, "p")
            + clientFrame(.text, "plain")
            + compressedClientFrames(.binary, deflater.compress(binary))
            + compressedClientFrames(.text, hello, fragments: 7, key: 0xA1B2_C3D4)
            + clientFrame(.close, FrameEncoder.closePayload(code: .normalClosure))
        let expected = Outcome(events: [
            .text(String(decoding: json, as: UTF8.self)), .ping([0x70]), .text("plain"), .binary(binary), .text("Hello"), .close(1000, "")
        ])
        let inflater = Inflater()
        #expect(feed(input, deflate: inflater) == expected)
        for pieces in allSplits(input) {
            let (outcome, reader) = feed(pieces, deflate: inflater)
            #expect(outcome == expected, "split \(pieces.map(\.count).prefix(3))")
            #expect(reader.isIdle && reader.bufferedCapacity == 0)
        }
    }

    /// One Inflater shared by two readers whose messages are split across feeds and interleaved,
    /// as connections on one event loop are.
    @Test func sharedInflaterAcrossInterleavedConnections() throws {
        let inflater = Inflater()
        let a = compressedClientFrames(.text, Deflater().compress(chatJSON(size: 900, seed: 1)), fragments: 2)
        let b = compressedClientFrames(.text, Deflater().compress(chatJSON(size: 700, seed: 2)))
        var readerA = WebSocketReader(deflate: inflater)
        var readerB = WebSocketReader(deflate: inflater)
        var got: [String] = []
        func push(_ reader: inout WebSocketReader, _ bytes: ArraySlice<UInt8>) throws {
            var copy = Array(bytes)
            try copy.withUnsafeMutableBytes { raw in
                try reader.feed(raw) { event in
                    if case .text(let t) = event { got.append(String(decoding: t, as: UTF8.self)) }
                    return true
                }
            }
        }
        try push(&readerA, a[..<(a.count / 2)])
        try push(&readerB, b[..<(b.count / 3)])
        try push(&readerB, b[(b.count / 3)...])
        try push(&readerA, a[(a.count / 2)...])
        #expect(got == [String(decoding: chatJSON(size: 700, seed: 2), as: UTF8.self), String(decoding: chatJSON(size: 900, seed: 1), as: UTF8.self)])
    }

    // C14: without deflate every RSV bit is reserved (1002).
    @Test func c14RSVWithoutNegotiation() {
        for frame in ["c1 82 00000000 6869", "a2 82 00000000 6869", "99 82 00000000 6869"] {
            let outcome = feed(hex(frame))
            #expect(outcome == Outcome(error: .reservedBitsSet))
            #expect(outcome.error?.closeCode == .protocolError)
        }
    }

    // RFC 7692 §6.1: with deflate, RSV1 only on the first frame of a data message; RSV2/3 never.
    @Test func rsv1Misuse() {
        let cases: [[UInt8]] = [
            hex("e1 87 00000000 f248cdc9c90700"),  // RSV1+RSV2 on text
            hex("d1 87 00000000 f248cdc9c90700"),  // RSV1+RSV3 on text
            hex("c9 80 00000000"),  // RSV1 on ping
            hex("ca 80 00000000"),  // RSV1 on pong
            hex("c8 82 00000000 03e8"),  // RSV1 on close
            hex("41 83 00000000 f248cd") + hex("c0 84 00000000 c9c90700"),  // RSV1 on a continuation too
            hex("01 83 00000000 616263") + hex("c0 84 00000000 c9c90700")  // RSV1 only on the continuation
        ]
        for input in cases {
            for pieces in allSplits(input) {
                #expect(feed(pieces, deflate: Inflater()).0 == Outcome(error: .reservedBitsSet), "\(input)")
            }
        }
    }

    @Test func uncompressedMessagesStillValidateUTF8FailFast() {
        #expect(feed(clientFrame(.text, hex("ce ba ed a0 80")), deflate: Inflater()) == Outcome(error: .invalidUTF8))
    }

    // UTF-8 is checked on the inflated text.
    @Test func invalidUTF8InsideCompressedText() {
        let bad = Deflater().compress(hex("48 69 ed a0 80 21"))
        #expect(feed(compressedClientFrames(.text, bad), deflate: Inflater()) == Outcome(error: .invalidUTF8))
        // The same bytes as binary are fine.
        #expect(feed(compressedClientFrames(.binary, bad), deflate: Inflater()) == Outcome(events: [.binary(hex("48 69 ed a0 80 21"))]))
    }

    @Test func corruptCompressedDataFails1007() {
        let outcome = feed(compressedClientFrames(.binary, [0xFF, 0xFF, 0xFF]), deflate: Inflater())
        #expect(outcome.error?.closeCode == .invalidPayloadData)
    }

    // C40 (a) one frame, (b) 64 fragments, (c) 1 GiB of zeros: all 1009 at a 1 MiB limit, whole and split.
    @Test func c40Bombs() {
        let bomb16 = zeroBomb(mebibytes: 16)
        let bomb1G = zeroBomb(mebibytes: 1024)
        let inputs = [
            compressedClientFrames(.text, bomb16),
            compressedClientFrames(.text, bomb16, fragments: 64),
            compressedClientFrames(.text, bomb1G)
        ]
        #expect(Array(inputs[0].prefix(4)) == hex("c1 fe 3f b7"))
        for input in inputs {
            let inflater = Inflater()
            let outcome = feed(input, maxMessageSize: 1 << 20, deflate: inflater)
            #expect(outcome == Outcome(error: .messageTooLarge(limit: 1 << 20)))
            #expect(outcome.error?.closeCode == .messageTooBig)
            #expect(inflater.peakBufferBytes <= (1 << 20) + 1)
            let cut = input.count / 3
            #expect(feed([Array(input[..<cut]), Array(input[cut...])], maxMessageSize: 1 << 20, deflate: inflater).0 == outcome)
        }
    }

    // C40 (d): 900 KiB of text compressed comes through whole.
    @Test func c40dLargeTextUnderTheLimit() {
        var text: [UInt8] = []
        var seed = 0
        while text.count < 900 * 1024 { seed += 1; text += chatJSON(size: 1000, seed: seed) }
        text = Array(text.prefix(900 * 1024))
        let input = compressedClientFrames(.text, Deflater().compress(text), fragments: 5)
        let inflater = Inflater()
        let (outcome, reader) = feed([input], maxMessageSize: 1 << 20, deflate: inflater)
        #expect(outcome == Outcome(events: [.text(String(decoding: text, as: UTF8.self))]))
        // Nothing of the large message stays: not in the reader, and the shared Inflater keeps at most 64 KiB.
        #expect(reader.isIdle && reader.bufferedCapacity == 0)
        #expect(inflater.peakBufferBytes >= text.count && inflater.bufferBytes <= Inflater.retainedCapacity)
    }

    // Incompressible data grows a little under DEFLATE; a message at the limit is still accepted.
    @Test func incompressibleMessageAtTheLimit() {
        var rng = SystemRandomNumberGenerator()
        let noise = (0..<(64 * 1024)).map { _ in UInt8.random(in: 0...255, using: &rng) }
        let compressed = Deflater().compress(noise)
        #expect(compressed.count > noise.count)
        #expect(feed(compressedClientFrames(.binary, compressed), maxMessageSize: noise.count, deflate: Inflater()) == Outcome(events: [.binary(noise)]))
        // The wire size is still bounded before anything is buffered.
        #expect(feed(hex("c2 ff 0000000000200000 00000000"), maxMessageSize: 1 << 20, deflate: Inflater()) == Outcome(error: .messageTooLarge(limit: 1 << 20)))
    }

    // Server frames built for the fan-out read back through a client-role reader.
    @Test func serverCompressedFrameReadsBack() throws {
        let json = chatJSON(size: 1024)
        let frame = try #require(json.withUnsafeBytes { Deflater().compressedFrame(opcode: .text, payload: $0) })
        #expect(feed(frame, role: .client, deflate: Inflater()) == Outcome(events: [.text(String(decoding: json, as: UTF8.self))]))
        // A client that did not negotiate deflate refuses it.
        #expect(feed(frame, role: .client) == Outcome(error: .reservedBitsSet))
    }
}
