import Foundation
import Testing

@testable import Protocol

@Suite struct DeflaterTests {
    // RFC 7692 §7.2.3.1: "Hello" compressed with no context takeover.
    @Test func helloVector() {
        #expect(Deflater().compress(Array("Hello".utf8)) == hex("f2 48 cd c9 c9 07 00"))
    }

    // §7.2.3.6: an empty message compresses to a single 0x00.
    @Test func emptyMessage() throws {
        #expect(Deflater().compress([]) == [0x00])
        #expect(try Inflater().inflate([0x00], limit: 10) == [])
    }

    @Test func roundTripsAgainstZlib() throws {
        let deflater = Deflater()
        var inputs: [[UInt8]] = [Array("Hello".utf8), chatJSON(size: 200), chatJSON(size: 1024), [UInt8](repeating: 7, count: 70_000)]
        var rng = SystemRandomNumberGenerator()
        inputs.append((0..<100_000).map { _ in UInt8.random(in: 0...255, using: &rng) })
        for input in inputs {
            let compressed = deflater.compress(input)
            #expect(zlibRawInflate(compressed) == input)
            #expect(try Inflater().inflate(zlibRawDeflate(input), limit: 1 << 20) == input)
            #expect(try Inflater().inflate(compressed, limit: 1 << 20) == input)
        }
    }

    // No context takeover: the same message compresses to the same bytes every time (C39 h).
    @Test func eachMessageStartsFromAnEmptyWindow() {
        let deflater = Deflater()
        let message = chatJSON(size: 1024)
        let first = deflater.compress(message)
        _ = deflater.compress(chatJSON(size: 1024, seed: 9))
        #expect(deflater.compress(message) == first)
        #expect(Deflater().compress(message) == first)
    }

    // A peer that asked for server_max_window_bits=9 gets data only a 512-byte window can inflate.
    @Test func smallWindowOutputInflates() throws {
        let input = (0..<5000).map { UInt8(truncatingIfNeeded: $0 % 700) }
        let compressed = Deflater(windowBits: 9).compress(input)
        #expect(zlibRawInflate(compressed) == input)
    }

    @Test func compressedFrameSetsRSV1OrDeclines() throws {
        let deflater = Deflater()
        let message = chatJSON(size: 1024)
        let frame = try #require(message.withUnsafeBytes { deflater.compressedFrame(opcode: .text, payload: $0) })
        #expect(frame[0] == 0xC1)
        let compressed = deflater.compress(message)
        #expect(Array(frame[FrameEncoder.headerSize(payloadLength: compressed.count, masked: false)...]) == compressed)
        // Incompressible: better sent plain.
        var rng = SystemRandomNumberGenerator()
        let noise = (0..<300).map { _ in UInt8.random(in: 0...255, using: &rng) }
        #expect(noise.withUnsafeBytes { deflater.compressedFrame(opcode: .binary, payload: $0) } == nil)
    }

    // Memory at the chosen settings, from zlib's own allocations.
    @Test func zlibMemory() {
        let deflater = Deflater()
        _ = deflater.compress(chatJSON(size: 1024))
        // (1 << (15 + 2)) + (1 << (8 + 9)) = 256 KiB, plus the state.
        #expect(deflater.zlibBytes >= 256 * 1024 && deflater.zlibBytes < 256 * 1024 + 16 * 1024)
        let inflater = Inflater()
        let before = inflater.zlibBytes
        #expect(before > 0 && before < 16 * 1024)
        _ = try? inflater.inflate(deflater.compress(chatJSON(size: 1024)), limit: 1 << 20)
        // The 32 KiB window arrives with the first output and stays.
        #expect(inflater.zlibBytes >= before + 32 * 1024 && inflater.zlibBytes < before + 33 * 1024)
        print("zlib memory: Deflater(window 15, memLevel 8) \(deflater.zlibBytes) B; Inflater(window 15) \(before) B before use, \(inflater.zlibBytes) B after")
    }
}

@Suite struct InflaterTests {
    @Test func limitIsOnInflatedBytes() throws {
        let input = [UInt8](repeating: 0x61, count: 10_000)
        let compressed = Deflater().compress(input)
        #expect(try Inflater().inflate(compressed, limit: 10_000) == input)
        #expect(throws: ProtocolError.messageTooLarge(limit: 9_999)) { try Inflater().inflate(compressed, limit: 9_999) }
        #expect(throws: ProtocolError.messageTooLarge(limit: 0)) { try Inflater().inflate(compressed, limit: 0) }
    }

    @Test func corruptDataIsATypedError() throws {
        let inflater = Inflater()
        // BTYPE 11 is reserved (RFC 1951 §3.2.3).
        #expect(throws: ProtocolError.invalidUTF8) { try inflater.inflate([0xFF, 0xFF, 0xFF], limit: 100) }
        // A stored block whose LEN and NLEN disagree.
        #expect(throws: ProtocolError.invalidUTF8) { try inflater.inflate(hex("00 05 00 00 00 41"), limit: 100) }
        // The shared instance is usable again.
        #expect(try inflater.inflate(hex("f2 48 cd c9 c9 07 00"), limit: 100) == Array("Hello".utf8))
    }

    // §7.2.3.5: a final block (BFINAL) instead of a sync flush is valid too.
    @Test func finalBlockMessages() throws {
        let input = chatJSON(size: 500)
        let inflater = Inflater()
        #expect(try inflater.inflate(zlibRawDeflate(input, finish: true), limit: 1 << 20) == input)
        #expect(try inflater.inflate(zlibRawDeflate(input, finish: true), limit: 1 << 20) == input)
    }

    // §7.2.3.2: with context takeover the second "Hello" refers back into the first.
    @Test func contextTakeover() throws {
        let inflater = Inflater(noContextTakeover: false)
        #expect(try inflater.inflate(hex("f2 48 cd c9 c9 07 00"), limit: 100) == Array("Hello".utf8))
        #expect(try inflater.inflate(hex("f2 00 11 00 00"), limit: 100) == Array("Hello".utf8))
        // A shared (resetting) instance cannot: the back-reference points before the message.
        let shared = Inflater()
        _ = try shared.inflate(hex("f2 48 cd c9 c9 07 00"), limit: 100)
        #expect(throws: ProtocolError.invalidUTF8) { try shared.inflate(hex("f2 00 11 00 00"), limit: 100) }
    }

    /// C40 (a)/(c): 16 MiB and 1 GiB of zeros, compressed with zlib here, stop at the 1 MiB limit
    /// quickly, with the output buffer never above the limit.
    @Test(arguments: [16, 1024]) func bombStopsAtTheLimit(mebibytes: Int) throws {
        let bomb = zeroBomb(mebibytes: mebibytes)
        #expect(bomb.count == (mebibytes == 16 ? 16_311 : 1_043_639))
        let inflater = Inflater()
        let clock = ContinuousClock()
        let start = clock.now
        #expect(throws: ProtocolError.messageTooLarge(limit: 1 << 20)) {
            try bomb.withUnsafeBytes { raw in
                try inflater.inflate(raw, limit: 1 << 20) { _ in Issue.record("delivered a bomb") }
            }
        }
        let elapsed = clock.now - start
        #expect(elapsed < .milliseconds(500), "took \(elapsed)")
        #expect(inflater.peakBufferBytes <= (1 << 20) + 1)
        #expect(inflater.bufferBytes <= Inflater.retainedCapacity)
        print(
            "C40 bomb \(mebibytes) MiB of zeros: \(bomb.count) B compressed, stopped at the 1 MiB limit in \(elapsed), peak output buffer \(inflater.peakBufferBytes) B"
        )
    }
}
