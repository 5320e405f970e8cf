import Testing

@testable import Protocol

@Suite struct UTF8ValidatorTests {
    func isValid(_ bytes: [UInt8]) -> Bool { bytes.withUnsafeBytes { UTF8Validator.isValid($0) } }

    /// Feeds `pieces` in order; returns the index of the piece that failed, or nil.
    func failingPiece(_ pieces: [[UInt8]]) -> (Int?, complete: Bool) {
        var v = UTF8Validator()
        for (i, piece) in pieces.enumerated() where !piece.withUnsafeBytes({ v.validate($0) }) { return (i, false) }
        return (nil, v.isComplete)
    }

    @Test func validSamples() {
        #expect(isValid([]))
        #expect(isValid(Array("Hello, world".utf8)))
        #expect(isValid(hex("ce ba e1 bd b9 cf 83 ce bc ce b5")))  // κόσμε
        for scalar: UInt32 in [0, 0x7F, 0x80, 0x7FF, 0x800, 0xD7FF, 0xE000, 0xFFFD, 0xFFFF, 0x10000, 0x10FFFF] {
            let s = String(Character(Unicode.Scalar(scalar)!))
            #expect(isValid(Array(s.utf8)), "U+\(String(scalar, radix: 16))")
        }
    }

    @Test func kosmeSplitAtEveryPoint() {
        let bytes = hex("ce ba e1 bd b9 cf 83 ce bc ce b5")
        for cut in 0...bytes.count {
            let (failed, complete) = failingPiece([Array(bytes[..<cut]), Array(bytes[cut...])])
            #expect(failed == nil && complete, "cut \(cut)")
        }
        let (failed, complete) = failingPiece(bytes.map { [$0] })
        #expect(failed == nil && complete)
    }

    @Test func incompleteAtTheEnd() {
        #expect(failingPiece([hex("ce")]) == (nil, false))
        #expect(failingPiece([hex("e1 bd")]) == (nil, false))
        #expect(failingPiece([hex("f0 9f 98")]) == (nil, false))
        #expect(!isValid(hex("41 42 f0 9f 98")))
    }

    /// The byte that makes the input impossible is the one rejected, whatever came before.
    @Test(
        arguments: [
            ("c0 80", 0 as Int), ("c1 bf", 0), ("e0 80 80", 1), ("e0 9f bf", 1), ("f0 80 80 80", 1), ("f0 8f bf bf", 1),  // overlongs
            ("ed a0 80", 1), ("ed bf bf", 1),  // surrogates U+D800, U+DFFF
            ("f4 90 80 80", 1), ("f5 80 80 80", 0), ("ff", 0), ("fe", 0),  // above U+10FFFF
            ("80", 0), ("bf", 0), ("ce 41", 1), ("e1 bd 41", 2), ("f0 9f 98 41", 3)  // stray or missing continuation
        ] as [(String, Int)])
    func rejectsAtTheFirstImpossibleByte(bytes: String, at position: Int) {
        let input = hex(bytes)
        // One byte at a time: the piece that fails is the impossible byte.
        let (failed, _) = failingPiece(input.map { [$0] })
        #expect(failed == position, "\(bytes)")
        #expect(!isValid(input))
    }

    @Test func failureIsSticky() {
        var v = UTF8Validator()
        #expect(!hex("ff").withUnsafeBytes { v.validate($0) })
        #expect(v.hasFailed)
        #expect(!Array("ok".utf8).withUnsafeBytes { v.validate($0) })
        v.reset()
        #expect(Array("ok".utf8).withUnsafeBytes { v.validate($0) } && v.isComplete)
    }

    /// Exercises the 8-byte ASCII fast path at every alignment.
    @Test func asciiFastPathBoundaries() {
        for length in 1...40 {
            for position in 0..<length {
                var bad = [UInt8](repeating: 0x61, count: length)
                bad[position] = 0xFF
                #expect(!isValid(bad), "bad at \(position)/\(length)")
                var good = [UInt8](repeating: 0x61, count: length)
                good.insert(contentsOf: hex("e2 82 ac"), at: position)  // €
                #expect(isValid(good), "€ at \(position)/\(length)")
                #expect(!isValid(Array(good.dropLast(length - position + 1))), "cut € at \(position)")
            }
        }
    }

    /// Agrees with the standard library's validation on random input biased towards tricky bytes.
    @Test func agreesWithStandardLibrary() {
        var rng = SystemRandomNumberGenerator()
        let interesting: [UInt8] = [
            0x00, 0x41, 0x7F, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xC0, 0xC1, 0xC2, 0xDF,
            0xE0, 0xE1, 0xEC, 0xED, 0xEE, 0xEF, 0xF0, 0xF1, 0xF3, 0xF4, 0xF5, 0xFF
        ]
        for _ in 0..<20_000 {
            let count = Int.random(in: 0...12, using: &rng)
            let bytes = (0..<count).map { _ in interesting.randomElement(using: &rng)! }
            let expected = String(validating: bytes, as: UTF8.self) != nil
            #expect(isValid(bytes) == expected, "\(bytes)")
        }
    }
}
