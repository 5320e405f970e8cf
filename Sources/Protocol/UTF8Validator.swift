/// Incremental UTF-8 validation: a deterministic finite automaton over bytes (in the style of
/// Björn Höhrmann's decoder) with an ASCII fast path that skips 8 bytes at a time.
///
/// Accepts exactly the well-formed sequences of Unicode Table 3-7 (RFC 3629 §4): no overlongs
/// (C0, C1, E0 80..9F, F0 80..8F), no surrogates (ED A0..BF), nothing above U+10FFFF (F4 90.., F5..FF).
/// Feed any split of the bytes: ``validate(_:)`` returns false at the first byte after which the
/// input can no longer be the prefix of valid UTF-8 (fail fast, RFC 6455 §8.1), and
/// ``isComplete`` tells whether the input so far ends on a character boundary.
/// State: one byte.
public struct UTF8Validator: Sendable {
    @usableFromInline static let accept: UInt8 = 0
    @usableFromInline static let reject: UInt8 = 1

    @usableFromInline var state: UInt8 = UTF8Validator.accept

    /// A validator at the start of a text.
    public init() {}

    /// True when the bytes so far form complete, valid UTF-8 (or none were fed).
    @inlinable public var isComplete: Bool { state == Self.accept }

    /// True once an invalid byte has been seen; stays true until ``reset()``.
    @inlinable public var hasFailed: Bool { state == Self.reject }

    /// Starts over, as for a new text.
    @inlinable public mutating func reset() { state = Self.accept }

    /// Whether `bytes` is complete, valid UTF-8.
    public static func isValid(_ bytes: UnsafeRawBufferPointer) -> Bool {
        var validator = UTF8Validator()
        return validator.validate(bytes) && validator.isComplete
    }

    /// Feeds the next bytes. Returns false as soon as the input so far cannot be the prefix of valid UTF-8.
    public mutating func validate(_ bytes: UnsafeRawBufferPointer) -> Bool {
        var s = state
        if s == Self.reject { return false }
        let n = bytes.count
        guard n > 0, let base = bytes.baseAddress else { return true }
        let ok: Bool = Self.transitions.withUnsafeBufferPointer { table in
            var i = 0
            while i < n {
                if s == Self.accept {
                    while i &+ 8 <= n, base.loadUnaligned(fromByteOffset: i, as: UInt64.self) & 0x8080_8080_8080_8080 == 0 {
                        i &+= 8
                    }
                    while i < n, base.load(fromByteOffset: i, as: UInt8.self) < 0x80 { i &+= 1 }
                    if i == n { break }
                }
                s = table[Int(s) &<< 8 | Int(base.load(fromByteOffset: i, as: UInt8.self))]
                if s == Self.reject { return false }
                i &+= 1
            }
            return true
        }
        state = s
        return ok
    }

    /// Next state for (state << 8 | byte). States: 0 accept, 1 reject, 2–4 expecting 1–3 more
    /// continuation bytes (80..BF), 5 after E0 (needs A0..BF), 6 after ED (80..9F),
    /// 7 after F0 (90..BF), 8 after F4 (80..8F). Built from Table 3-7 rather than typed in.
    @usableFromInline static let transitions: [UInt8] = {
        var table = [UInt8](repeating: reject, count: 9 * 256)
        func set(_ state: Int, _ range: ClosedRange<Int>, _ next: UInt8) {
            for b in range { table[state << 8 | b] = next }
        }
        set(0, 0x00...0x7F, 0)
        set(0, 0xC2...0xDF, 2)
        set(0, 0xE0...0xE0, 5)
        set(0, 0xE1...0xEC, 3)
        set(0, 0xED...0xED, 6)
        set(0, 0xEE...0xEF, 3)
        set(0, 0xF0...0xF0, 7)
        set(0, 0xF1...0xF3, 4)
        set(0, 0xF4...0xF4, 8)
        set(2, 0x80...0xBF, 0)
        set(3, 0x80...0xBF, 2)
        set(4, 0x80...0xBF, 3)
        set(5, 0xA0...0xBF, 2)
        set(6, 0x80...0x9F, 2)
        set(7, 0x90...0xBF, 3)
        set(8, 0x80...0x8F, 3)
        return table
    }()
}
