/// Single-pass RFC 8259 scanner over a JSON text held in memory: validates values without building
/// them, so the cost is one read of each byte (ASCII inside strings is skipped 8 bytes at a time).
///
/// What it accepts is exactly RFC 8259's grammar (§2–§7), UTF-8 only (§8.1), with three limits:
/// - containers nest at most `maxDepth` levels (`[]` is one level), past which it stops with
///   ``Failure/tooDeep`` at once;
/// - `\u` escapes must form valid Unicode scalars: an unpaired surrogate (`"\ud800"`) is refused
///   (§8.2 leaves their meaning undefined; they cannot be represented in UTF-8);
/// - numbers that overflow a Double (magnitude of about 1.8e308 or more) are refused (§9 allows range
///   limits), so every number passed on can be read by common client parsers.
///
/// No byte order mark, comments, trailing commas, single quotes, NaN or Infinity.
/// Positions are byte offsets into the text. Value type; the pointer is valid only while the
/// caller's buffer is.
struct JSONScanner {
    /// Why scanning stopped.
    enum Failure: Error, Equatable {
        /// The text is not valid JSON at ``JSONScanner/position``.
        case malformed
        /// A container nested deeper than the scanner's `maxDepth`.
        case tooDeep
    }

    private let base: UnsafePointer<UInt8>?
    /// Bytes in the text.
    let count: Int
    /// Most levels of nested containers one scanned value may have: the `maxDepth` given, clamped
    /// to 1...65,536 (one byte of scratch memory a level).
    let maxDepth: Int
    /// Offset of the next byte to read.
    var position = 0
    /// Set when ``skipWhitespace()`` skipped any byte since it was last cleared: tells the caller
    /// whether a value's text is already compact.
    var sawWhitespace = false
    /// Whether the last string scanned by ``scanString()`` contained a backslash escape.
    private(set) var lastStringHadEscape = false

    init(_ text: UnsafeRawBufferPointer, maxDepth: Int) {
        base = text.baseAddress?.assumingMemoryBound(to: UInt8.self)
        count = text.count
        self.maxDepth = min(max(1, maxDepth), 1 << 16)
    }

    /// The byte at `offset`, or 0 past the end. 0 is never valid where the scanner looks (a raw
    /// NUL is malformed outside and inside strings), so the end needs no separate check.
    @inline(__always)
    func byte(_ offset: Int) -> UInt8 {
        offset < count ? base.unsafelyUnwrapped[offset] : 0
    }

    /// The bytes in `range`, which must lie within the text.
    func bytes(_ range: Range<Int>) -> UnsafeBufferPointer<UInt8> {
        UnsafeBufferPointer(start: base.map { $0 + range.lowerBound }, count: range.count)
    }

    var atEnd: Bool { position >= count }

    /// Skips RFC 8259 whitespace (space, tab, LF, CR).
    mutating func skipWhitespace() {
        var i = position
        skipWhitespace(&i, &sawWhitespace)
        position = i
    }

    // The scanning functions below take the offset as an `inout` local and do not mutate `self`:
    // with `position` kept in a register instead of re-read from memory after every store, the
    // `[0,0,0,…]` loop runs about twice as fast.

    @inline(__always)
    private func skipWhitespace(_ i: inout Int, _ saw: inout Bool) {
        while true {
            let b = byte(i)
            guard b == 0x20 || b == 0x0A || b == 0x0D || b == 0x09 else { return }
            i &+= 1
            saw = true
        }
    }

    /// Scans one whole value starting at ``position`` (no whitespace before it) and leaves
    /// ``position`` just after it. Returns the value's first byte (`"`, `{`, `[`, `t`, `f`, `n`,
    /// `-` or a digit).
    mutating func scanValue() throws(Failure) -> UInt8 {
        var i = position
        var escaped = false
        defer { position = i }
        let first = byte(i)
        if first == UInt8(ascii: "[") || first == UInt8(ascii: "{") {
            var saw = false
            // The open-container stack, one byte a level, on the stack rather than the heap.
            try withUnsafeTemporaryAllocation(of: UInt8.self, capacity: maxDepth) { stack in
                Result { () throws(Failure) in try scanContainer(stack.baseAddress!, &i, &saw) }
            }.get()
            if saw { sawWhitespace = true }
        } else {
            try scanScalar(first, &i, &escaped)
            lastStringHadEscape = escaped
        }
        return first
    }

    /// Strings, numbers and literals.
    /// Strings (setting `escaped` when one has a backslash escape), numbers and literals.
    @inline(__always)
    private func scanScalar(_ first: UInt8, _ i: inout Int, _ escaped: inout Bool) throws(Failure) {
        switch first {
        case UInt8(ascii: "\""):
            let (end, hadEscape) = try scanString(from: i)
            i = end
            if hadEscape { escaped = true }
        case UInt8(ascii: "0")...UInt8(ascii: "9"):
            // Fast path for plain integers (`[0,0,0,…]` is one every two bytes): digits and then
            // a byte that cannot continue a number; anything else is rescanned in full.
            var k = i &+ 1
            while isDigit(byte(k)) { k &+= 1 }
            let next = byte(k)
            if next != UInt8(ascii: "."), next | 0x20 != UInt8(ascii: "e"), k &- i <= 308,
                first != UInt8(ascii: "0") || k == i &+ 1
            {
                i = k
            } else {
                i = try scanNumber(from: i)
            }
        case UInt8(ascii: "-"): i = try scanNumber(from: i)
        case UInt8(ascii: "t"): try literal(0x7472_7565, length: 4, &i)  // "true"
        case UInt8(ascii: "f"): try literal(0x6661_6C73_65, length: 5, &i)  // "false"
        case UInt8(ascii: "n"): try literal(0x6E75_6C6C, length: 4, &i)  // "null"
        default: throw .malformed
        }
    }

    /// `word` holds the literal's bytes, first byte most significant.
    @inline(__always)
    private func literal(_ word: UInt64, length: Int, _ i: inout Int) throws(Failure) {
        guard count - i >= length else { throw .malformed }
        var seen: UInt64 = 0
        for k in 0..<length { seen = seen << 8 | UInt64(byte(i + k)) }
        guard seen == word else { throw .malformed }
        i += length
    }

    /// Arrays and objects, iteratively: `stack[level]` holds the opening byte of each open container.
    private func scanContainer(_ stack: UnsafeMutablePointer<UInt8>, _ offset: inout Int, _ sawWhitespace: inout Bool) throws(Failure) {
        // Plain locals: `offset` lives in the caller's closure context, i.e. in memory.
        var i = offset
        var saw = false
        defer {
            offset = i
            if saw { sawWhitespace = true }
        }
        var depth = 0
        var atValue = true
        var escaped = false
        while true {
            if atValue {
                let b = byte(i)
                if b == UInt8(ascii: "[") || b == UInt8(ascii: "{") {
                    guard depth < maxDepth else { throw .tooDeep }
                    stack[depth] = b
                    depth += 1
                    i += 1
                    skipWhitespace(&i, &saw)
                    if byte(i) == b &+ 2 {  // "]" is "[" + 2 and "}" is "{" + 2
                        i += 1
                        depth -= 1
                    } else {
                        if b == UInt8(ascii: "{") { try scanKey(&i, &saw) }
                        continue
                    }
                } else {
                    try scanScalar(b, &i, &escaped)
                }
                atValue = false
            }
            if depth == 0 { return }
            skipWhitespace(&i, &saw)
            let b = byte(i)
            let open = stack[depth - 1]
            if b == UInt8(ascii: ",") {
                i += 1
                skipWhitespace(&i, &saw)
                if open == UInt8(ascii: "{") { try scanKey(&i, &saw) }
                atValue = true
            } else if b == open &+ 2 {
                i += 1
                depth -= 1
            } else {
                throw .malformed
            }
        }
    }

    /// An object member's `"key" :` and the whitespace after it.
    @inline(__always)
    private func scanKey(_ i: inout Int, _ saw: inout Bool) throws(Failure) {
        guard byte(i) == UInt8(ascii: "\"") else { throw .malformed }
        i = try scanString(from: i).end
        skipWhitespace(&i, &saw)
        guard byte(i) == UInt8(ascii: ":") else { throw .malformed }
        i += 1
        skipWhitespace(&i, &saw)
    }

    // MARK: strings

    /// Scans a string starting at its opening quote (RFC 8259 §7) and sets ``lastStringHadEscape``.
    /// Refuses raw control characters (< 0x20), bad escapes, unpaired surrogate escapes and
    /// ill-formed UTF-8 (Unicode Table 3-7: no overlongs, no encoded surrogates, nothing above U+10FFFF).
    mutating func scanString() throws(Failure) {
        (position, lastStringHadEscape) = try scanString(from: position)
    }

    // Offsets go in and out by value: an `inout` offset passed to a call that is not inlined
    // would pin the caller's offset to memory for its whole loop.
    private func scanString(from start: Int) throws(Failure) -> (end: Int, escaped: Bool) {
        guard let base else { throw .malformed }
        var i = start + 1
        var escaped = false
        while true {
            // Eight plain ASCII bytes at a time; a flagged word falls through to the byte path
            // at its first flagged byte (flags above a true one may be false, never below).
            while i &+ 8 <= count {
                let w = UnsafeRawPointer(base + i).loadUnaligned(as: UInt64.self).littleEndian
                let high: UInt64 = 0x8080_8080_8080_8080
                let ones: UInt64 = 0x0101_0101_0101_0101
                let quote = w ^ (ones &* 0x22)
                let backslash = w ^ (ones &* 0x5C)
                let flags =
                    (w | ((w &- ones &* 0x20) & ~w)
                        | ((quote &- ones) & ~quote) | ((backslash &- ones) & ~backslash)) & high
                if flags == 0 { i &+= 8; continue }
                i &+= flags.trailingZeroBitCount >> 3
                break
            }
            let b = byte(i)
            if b == UInt8(ascii: "\"") {
                return (i + 1, escaped)
            } else if b == UInt8(ascii: "\\") {
                escaped = true
                i = try scanEscape(at: i)
            } else if b < 0x20 {
                throw .malformed  // raw control character, or the end of the text
            } else if b < 0x80 {
                i += 1
            } else {
                i = try scanUTF8(at: i)
            }
        }
    }

    /// One escape at `i` (a backslash); returns the offset after it.
    private func scanEscape(at i: Int) throws(Failure) -> Int {
        switch byte(i + 1) {
        case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"), UInt8(ascii: "b"),
            UInt8(ascii: "f"), UInt8(ascii: "n"), UInt8(ascii: "r"), UInt8(ascii: "t"):
            return i + 2
        case UInt8(ascii: "u"):
            guard let unit = hex4(at: i + 2) else { throw .malformed }
            switch unit {
            case 0xD800...0xDBFF:
                guard byte(i + 6) == UInt8(ascii: "\\"), byte(i + 7) == UInt8(ascii: "u"),
                    let low = hex4(at: i + 8), (0xDC00...0xDFFF).contains(low)
                else { throw .malformed }
                return i + 12
            case 0xDC00...0xDFFF:
                throw .malformed
            default:
                return i + 6
            }
        default:
            throw .malformed
        }
    }

    /// Four hex digits at `i` as a UTF-16 code unit; nil when any is not a hex digit.
    func hex4(at i: Int) -> UInt16? {
        var value: UInt16 = 0
        for k in 0..<4 {
            guard let digit = hexValue(byte(i + k)) else { return nil }
            value = value << 4 | UInt16(digit)
        }
        return value
    }

    /// One multi-byte UTF-8 sequence at `i` (lead byte >= 0x80), per Unicode Table 3-7; returns the offset after it.
    @inline(__always)
    private func scanUTF8(at i: Int) throws(Failure) -> Int {
        let lead = byte(i)
        @inline(__always) func cont(_ k: Int, _ range: ClosedRange<UInt8> = 0x80...0xBF) -> Bool {
            range.contains(byte(i + k))
        }
        switch lead {
        case 0xC2...0xDF:
            guard cont(1) else { throw .malformed }
            return i + 2
        case 0xE0:
            guard cont(1, 0xA0...0xBF), cont(2) else { throw .malformed }
            return i + 3
        case 0xE1...0xEC, 0xEE...0xEF:
            guard cont(1), cont(2) else { throw .malformed }
            return i + 3
        case 0xED:
            guard cont(1, 0x80...0x9F), cont(2) else { throw .malformed }
            return i + 3
        case 0xF0:
            guard cont(1, 0x90...0xBF), cont(2), cont(3) else { throw .malformed }
            return i + 4
        case 0xF1...0xF3:
            guard cont(1), cont(2), cont(3) else { throw .malformed }
            return i + 4
        case 0xF4:
            guard cont(1, 0x80...0x8F), cont(2), cont(3) else { throw .malformed }
            return i + 4
        default:
            throw .malformed
        }
    }

    // MARK: numbers

    /// `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?` (RFC 8259 §6), refusing values
    /// that overflow a Double.
    private func scanNumber(from start: Int) throws(Failure) -> Int {
        var i = start
        if byte(i) == UInt8(ascii: "-") { i += 1 }
        let intStart = i
        if byte(i) == UInt8(ascii: "0") {
            i += 1
        } else {
            guard isDigit(byte(i)) else { throw .malformed }
            while isDigit(byte(i)) { i += 1 }
        }
        let intDigits = i - intStart
        var fraction = i..<i
        if byte(i) == UInt8(ascii: ".") {
            i += 1
            let fracStart = i
            while isDigit(byte(i)) { i += 1 }
            guard i > fracStart else { throw .malformed }
            fraction = fracStart..<i
        }
        var exponent = 0
        var hasExponent = false
        if byte(i) | 0x20 == UInt8(ascii: "e") {
            hasExponent = true
            i += 1
            var negative = false
            if byte(i) == UInt8(ascii: "+") || byte(i) == UInt8(ascii: "-") {
                negative = byte(i) == UInt8(ascii: "-")
                i += 1
            }
            let expStart = i
            while isDigit(byte(i)) {
                // Saturates: only whether the magnitude passes 308 matters.
                exponent = min(exponent * 10 + Int(byte(i) - UInt8(ascii: "0")), 1_000_000)
                i += 1
            }
            guard i > expStart else { throw .malformed }
            if negative { exponent = -exponent }
        }
        // Magnitudes below 1e309 without an exponent need no check (at most 309 integer digits).
        guard hasExponent || intDigits > 308 else { return i }
        // Decimal magnitude: the power of ten of the first non-zero digit.
        var magnitude: Int
        if byte(intStart) != UInt8(ascii: "0") {
            magnitude = intDigits - 1
        } else if let k = fraction.firstIndex(where: { byte($0) != UInt8(ascii: "0") }) {
            magnitude = -(k - fraction.lowerBound + 1)
        } else {
            return i  // zero, whatever its exponent
        }
        magnitude += exponent
        if magnitude > 308 { throw .malformed }
        if magnitude == 308 {
            // Near Double.greatestFiniteMagnitude: let the C library round it as client parsers would.
            let text = String(decoding: bytes(start..<i), as: UTF8.self)
            guard let value = Double(text), value.isFinite else { throw .malformed }
        }
        return i
    }

    @inline(__always)
    private func isDigit(_ b: UInt8) -> Bool { b &- UInt8(ascii: "0") < 10 }

    // MARK: decoding

    /// The text of the string whose content (between the quotes, already validated by
    /// ``scanString()``) is `range`, with escapes resolved.
    func decodeString(_ range: Range<Int>, hasEscapes: Bool) -> String {
        let raw = bytes(range)
        guard hasEscapes else { return String(decoding: raw, as: UTF8.self) }
        var out: [UInt8] = []
        out.reserveCapacity(raw.count)
        var i = range.lowerBound
        while i < range.upperBound {
            let b = byte(i)
            guard b == UInt8(ascii: "\\") else {
                out.append(b)
                i += 1
                continue
            }
            let e = byte(i + 1)
            switch e {
            case UInt8(ascii: "b"): out.append(0x08)
            case UInt8(ascii: "f"): out.append(0x0C)
            case UInt8(ascii: "n"): out.append(0x0A)
            case UInt8(ascii: "r"): out.append(0x0D)
            case UInt8(ascii: "t"): out.append(0x09)
            case UInt8(ascii: "u"):
                var scalar = UInt32(hex4(at: i + 2) ?? 0xFFFD)
                i += 6
                if (0xD800...0xDBFF).contains(scalar), let low = hex4(at: i + 2) {
                    scalar = 0x10000 + ((scalar - 0xD800) << 10) + (UInt32(low) - 0xDC00)
                    i += 6
                }
                let unicode = Unicode.Scalar(scalar) ?? "\u{FFFD}"
                out.append(contentsOf: UTF8.encode(unicode)!)
                continue
            default: out.append(e)  // " \ /
            }
            i += 2
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// The bytes of a validated value in `range` without insignificant whitespace (strings kept byte for byte).
    func compacted(_ range: Range<Int>) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(range.count)
        var inString = false
        var i = range.lowerBound
        while i < range.upperBound {
            let b = byte(i)
            if inString {
                out.append(b)
                if b == UInt8(ascii: "\\") {
                    out.append(byte(i + 1))
                    i += 1
                } else if b == UInt8(ascii: "\"") {
                    inString = false
                }
            } else if b == UInt8(ascii: "\"") {
                inString = true
                out.append(b)
            } else if b != 0x20 && b != 0x0A && b != 0x0D && b != 0x09 {
                out.append(b)
            }
            i += 1
        }
        return out
    }
}
