import Testing

@testable import Protocol

@Suite struct MaskingTests {
    func naive(_ key: UInt32, _ bytes: [UInt8], phase: Int) -> [UInt8] {
        let k = [UInt8(key >> 24), UInt8(key >> 16 & 0xFF), UInt8(key >> 8 & 0xFF), UInt8(key & 0xFF)]
        return bytes.enumerated().map { $0.element ^ k[($0.offset + phase) % 4] }
    }

    /// RFC 6455 §5.7: "Hello" masked with 37 fa 21 3d.
    @Test func rfcExample() {
        var bytes = Array("Hello".utf8)
        let phase = bytes.withUnsafeMutableBytes { applyMask(0x37FA_213D, to: $0) }
        #expect(bytes == hex("7f 9f 4d 51 58"))
        #expect(phase == 1)
    }

    @Test func matchesByteByByteAtEveryLengthAndPhase() {
        let key: UInt32 = 0xA1B2_C3D4
        for length in 0...33 {
            let input = (0..<length).map { UInt8(truncatingIfNeeded: $0 &* 37 &+ 11) }
            for phase in 0...3 {
                var bytes = input
                let next = bytes.withUnsafeMutableBytes { applyMask(key, to: $0, phase: phase) }
                #expect(bytes == naive(key, input, phase: phase), "length \(length) phase \(phase)")
                #expect(next == (phase + length) % 4)
            }
        }
    }

    @Test func piecewiseEqualsWhole() {
        let key: UInt32 = 0x0102_0304
        let input = (0..<50).map { UInt8($0) }
        for cut in 0...input.count {
            var bytes = input
            bytes.withUnsafeMutableBytes { raw in
                let phase = applyMask(key, to: UnsafeMutableRawBufferPointer(rebasing: raw[..<cut]))
                _ = applyMask(key, to: UnsafeMutableRawBufferPointer(rebasing: raw[cut...]), phase: phase)
            }
            #expect(bytes == naive(key, input, phase: 0))
        }
    }
}
