import Testing

@testable import Protocol

@Suite struct FrameEncoderTests {
    @Test func headerSizes() {
        #expect(FrameEncoder.headerSize(payloadLength: 0, masked: false) == 2)
        #expect(FrameEncoder.headerSize(payloadLength: 125, masked: false) == 2)
        #expect(FrameEncoder.headerSize(payloadLength: 126, masked: false) == 4)
        #expect(FrameEncoder.headerSize(payloadLength: 65535, masked: false) == 4)
        #expect(FrameEncoder.headerSize(payloadLength: 65536, masked: false) == 10)
        #expect(FrameEncoder.headerSize(payloadLength: 0, masked: true) == 6)
        #expect(FrameEncoder.headerSize(payloadLength: 65536, masked: true) == 14)
    }

    /// RFC 6455 §5.7 examples.
    @Test func rfcExamples() {
        #expect(FrameEncoder.frame(opcode: .text, payload: Array("Hello".utf8)) == hex("81 05 48 65 6c 6c 6f"))
        #expect(
            FrameEncoder.frame(opcode: .text, payload: Array("Hello".utf8), maskingKey: 0x37FA_213D)
                == hex("81 85 37 fa 21 3d 7f 9f 4d 51 58"))
        #expect(FrameEncoder.frame(opcode: .text, payload: Array("Hel".utf8), fin: false) == hex("01 03 48 65 6c"))
        #expect(FrameEncoder.frame(opcode: .continuation, payload: Array("lo".utf8)) == hex("80 02 6c 6f"))
        #expect(FrameEncoder.frame(opcode: .ping, payload: Array("Hello".utf8)) == hex("89 05 48 65 6c 6c 6f"))
        #expect(
            FrameEncoder.frame(opcode: .pong, payload: Array("Hello".utf8), maskingKey: 0x37FA_213D)
                == hex("8a 85 37 fa 21 3d 7f 9f 4d 51 58"))
        let f256 = FrameEncoder.frame(opcode: .binary, payload: [UInt8](repeating: 7, count: 256))
        #expect(Array(f256.prefix(4)) == hex("82 7E 01 00"))
        #expect(f256.count == 260)
        let f64k = FrameEncoder.frame(opcode: .binary, payload: [UInt8](repeating: 7, count: 65536))
        #expect(Array(f64k.prefix(10)) == hex("82 7F 00 00 00 00 00 01 00 00"))
        #expect(f64k.count == 65546)
    }

    @Test func writeHeaderIntoBuffer() {
        var buffer = [UInt8](repeating: 0xEE, count: 14)
        let size = buffer.withUnsafeMutableBytes {
            FrameEncoder.writeHeader(fin: true, opcode: .binary, payloadLength: 70000, maskingKey: 0x0102_0304, into: $0)
        }
        #expect(size == 14)
        #expect(buffer == hex("82 FF 00 00 00 00 00 01 11 70 01 02 03 04"))
    }

    @Test func closePayloads() {
        #expect(FrameEncoder.closePayload(code: nil, reason: "ignored") == [])
        #expect(FrameEncoder.closePayload(code: .normalClosure) == hex("03 e8"))
        #expect(FrameEncoder.closePayload(code: .normalClosure, reason: "bye") == hex("03 e8 62 79 65"))
        let long = String(repeating: "a", count: 200)
        #expect(FrameEncoder.closePayload(code: .goingAway, reason: long).count == 125)
        // 122 ASCII bytes + "é" (2 bytes) would be 126: the é must be dropped whole.
        let edge = String(repeating: "a", count: 122) + "éz"
        let body = FrameEncoder.closePayload(code: .goingAway, reason: edge)
        #expect(body.count == 124)
        #expect(UTF8Validator.isValid(UnsafeRawBufferPointer(start: nil, count: 0)))
        #expect(body.withUnsafeBytes { UTF8Validator.isValid(UnsafeRawBufferPointer(rebasing: $0[2...])) })
        let emoji = String(repeating: "😀", count: 40)  // 4 bytes each
        let emojiBody = FrameEncoder.closePayload(code: .goingAway, reason: emoji)
        #expect(emojiBody.count == 2 + 120)
    }

    @Test func roundTripThroughReader() {
        for length in [0, 1, 125, 126, 127, 65535, 65536, 70000] {
            let payload = (0..<length).map { UInt8(truncatingIfNeeded: $0) }
            let masked = FrameEncoder.frame(opcode: .binary, payload: payload, maskingKey: 0xDEAD_BEEF)
            #expect(feed(masked, role: .server) == Outcome(events: [.binary(payload)]))
            let unmasked = FrameEncoder.frame(opcode: .binary, payload: payload)
            #expect(feed(unmasked, role: .client) == Outcome(events: [.binary(payload)]))
        }
    }
}
