/// A validating, non-allocating JSON scanner (RFC 8259) that reports the byte ranges of values
/// instead of building a tree.
///
/// Used by the Socket.IO layer to check a packet's payload and split an event array into its
/// arguments, which are then carried as raw ``JSONFragment``s byte for byte. Cost: one pass over
/// the bytes, no heap allocation besides the returned ranges; nesting is bounded by `maxDepth`
/// (an iterative depth counter, so a hostile `[[[[…` cannot exhaust the stack).
/// Leading and trailing whitespace around the top-level value is allowed, as by JSON.parse.
/// Strings are checked for valid escapes and the absence of raw control characters; UTF-8
/// validity is the caller's job (``UTF8Validator``).
struct SocketIOJSONScanner {
    /// The kind of a top-level value, read from its first byte.
    enum Kind: Equatable { case object, array, string, number, literal }

    /// The deepest nesting of arrays and objects accepted (a value at top level has depth 0).
    static let maxDepth = 64

    /// The top-level value's kind and range within `bytes`; nil when `bytes` is not exactly one
    /// valid JSON value (with optional surrounding whitespace).
    static func scan(_ bytes: UnsafeRawBufferPointer) -> (kind: Kind, range: Range<Int>)? {
        var i = skipSpace(bytes, 0)
        let start = i
        guard let end = value(bytes, i) else { return nil }
        i = skipSpace(bytes, end)
        guard i == bytes.count, let kind = kind(of: bytes[start]) else { return nil }
        return (kind, start..<end)
    }

    /// The ranges of the elements of the top-level array in `bytes` (whitespace trimmed), nil when
    /// `bytes` is not one valid JSON array. One pass: each element is validated as it is delimited.
    static func arrayElements(_ bytes: UnsafeRawBufferPointer) -> [Range<Int>]? {
        var i = skipSpace(bytes, 0)
        guard i < bytes.count, bytes[i] == UInt8(ascii: "[") else { return nil }
        var elements: [Range<Int>] = []
        i = skipSpace(bytes, i + 1)
        guard i < bytes.count else { return nil }
        if bytes[i] != UInt8(ascii: "]") {
            while true {
                // Elements sit one level down, so they get one level less of nesting.
                guard let end = value(bytes, i, maxDepth: maxDepth - 1) else { return nil }
                elements.append(i..<end)
                i = skipSpace(bytes, end)
                guard i < bytes.count else { return nil }
                if bytes[i] == UInt8(ascii: "]") { break }
                guard bytes[i] == UInt8(ascii: ",") else { return nil }
                i = skipSpace(bytes, i + 1)
            }
        }
        return skipSpace(bytes, i + 1) == bytes.count ? elements : nil
    }

    static func kind(of first: UInt8) -> Kind? {
        switch first {
        case UInt8(ascii: "{"): .object
        case UInt8(ascii: "["): .array
        case UInt8(ascii: "\""): .string
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): .number
        case UInt8(ascii: "t"), UInt8(ascii: "f"), UInt8(ascii: "n"): .literal
        default: nil
        }
    }

    private static func skipSpace(_ b: UnsafeRawBufferPointer, _ start: Int) -> Int {
        var i = start
        while i < b.count, b[i] == 0x20 || b[i] == 0x09 || b[i] == 0x0A || b[i] == 0x0D { i += 1 }
        return i
    }

    /// The end of the value starting at `start`, nil when there is none. Containers are tracked
    /// with a bit stack (1 = object) so the scan is iterative.
    private static func value(_ b: UnsafeRawBufferPointer, _ start: Int, maxDepth: Int = SocketIOJSONScanner.maxDepth) -> Int? {
        var stack: UInt64 = 0  // bit d set: the container at depth d+1 is an object
        var depth = 0
        var i = start
        // Parse one value, then unwind through the containers it closes.
        while true {
            i = skipSpace(b, i)
            guard i < b.count else { return nil }
            switch b[i] {
            case UInt8(ascii: "{"), UInt8(ascii: "["):
                let isObject = b[i] == UInt8(ascii: "{")
                guard depth < maxDepth else { return nil }
                if isObject { stack |= 1 << UInt64(depth) } else { stack &= ~(1 << UInt64(depth)) }
                depth += 1
                i = skipSpace(b, i + 1)
                guard i < b.count else { return nil }
                if b[i] == (isObject ? UInt8(ascii: "}") : UInt8(ascii: "]")) {
                    depth -= 1
                    i += 1
                    break  // an empty container is a complete value
                }
                if isObject {
                    guard let afterKey = objectKey(b, i) else { return nil }
                    i = afterKey
                }
                continue
            case UInt8(ascii: "\""):
                guard let end = string(b, i) else { return nil }
                i = end
            case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
                guard let end = number(b, i) else { return nil }
                i = end
            case UInt8(ascii: "t"): guard let end = literal(b, i, "true") else { return nil }; i = end
            case UInt8(ascii: "f"): guard let end = literal(b, i, "false") else { return nil }; i = end
            case UInt8(ascii: "n"): guard let end = literal(b, i, "null") else { return nil }; i = end
            default: return nil
            }
            // A value ended at i: close containers or move to the next element.
            while true {
                if depth == 0 { return i }
                let inObject = stack & (1 << UInt64(depth - 1)) != 0
                i = skipSpace(b, i)
                guard i < b.count else { return nil }
                if b[i] == UInt8(ascii: ",") {
                    i = skipSpace(b, i + 1)
                    if inObject {
                        guard let afterKey = objectKey(b, i) else { return nil }
                        i = afterKey
                    }
                    break  // parse the next value
                }
                guard b[i] == (inObject ? UInt8(ascii: "}") : UInt8(ascii: "]")) else { return nil }
                depth -= 1
                i += 1
            }
        }
    }

    /// `"key" :` starting at `i`; returns the index after the colon.
    private static func objectKey(_ b: UnsafeRawBufferPointer, _ i: Int) -> Int? {
        guard i < b.count, b[i] == UInt8(ascii: "\""), let end = string(b, i) else { return nil }
        let colon = skipSpace(b, end)
        guard colon < b.count, b[colon] == UInt8(ascii: ":") else { return nil }
        return colon + 1
    }

    /// A string literal starting at the quote at `i`; returns the index after the closing quote.
    static func string(_ b: UnsafeRawBufferPointer, _ start: Int) -> Int? {
        var i = start + 1
        while i < b.count {
            let c = b[i]
            if c == UInt8(ascii: "\"") { return i + 1 }
            if c < 0x20 { return nil }
            if c == UInt8(ascii: "\\") {
                guard i + 1 < b.count else { return nil }
                switch b[i + 1] {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"), UInt8(ascii: "b"),
                    UInt8(ascii: "f"), UInt8(ascii: "n"), UInt8(ascii: "r"), UInt8(ascii: "t"):
                    i += 2
                case UInt8(ascii: "u"):
                    guard i + 5 < b.count else { return nil }
                    for k in 2...5 where hexValue(b[i + k]) == nil { return nil }
                    i += 6
                default:
                    return nil
                }
                continue
            }
            i += 1
        }
        return nil
    }

    /// `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?` starting at `i`.
    private static func number(_ b: UnsafeRawBufferPointer, _ start: Int) -> Int? {
        var i = start
        func digits() -> Int {
            let from = i
            while i < b.count, b[i] &- 0x30 < 10 { i += 1 }
            return i - from
        }
        if b[i] == UInt8(ascii: "-") { i += 1 }
        guard i < b.count else { return nil }
        if b[i] == UInt8(ascii: "0") { i += 1 } else if digits() == 0 { return nil }
        if i < b.count, b[i] == UInt8(ascii: ".") {
            i += 1
            if digits() == 0 { return nil }
        }
        if i < b.count, b[i] == UInt8(ascii: "e") || b[i] == UInt8(ascii: "E") {
            i += 1
            if i < b.count, b[i] == UInt8(ascii: "+") || b[i] == UInt8(ascii: "-") { i += 1 }
            if digits() == 0 { return nil }
        }
        return i
    }

    private static func literal(_ b: UnsafeRawBufferPointer, _ i: Int, _ word: StaticString) -> Int? {
        let n = word.utf8CodeUnitCount
        guard i + n <= b.count else { return nil }
        for k in 0..<n where b[i + k] != word.utf8Start[k] { return nil }
        return i + n
    }

    /// The decoded text of the JSON string literal `b[range]` (quotes included), nil when it is
    /// not one. Escape-free strings are copied directly; others go through the full decoder.
    static func decodeString(_ b: UnsafeRawBufferPointer, _ range: Range<Int>) -> String? {
        guard range.count >= 2, b[range.lowerBound] == UInt8(ascii: "\""), string(b, range.lowerBound) == range.upperBound else { return nil }
        let inner = UnsafeRawBufferPointer(rebasing: b[(range.lowerBound + 1)..<(range.upperBound - 1)])
        if !inner.contains(UInt8(ascii: "\\")) {
            return String(validating: inner, as: UTF8.self)
        }
        return JSONValue.parse(UnsafeRawBufferPointer(rebasing: b[range])) as? String
    }
}
