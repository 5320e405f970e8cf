import Foundation

/// What JSONSerialization returned for one value, with booleans told apart from numbers.
///
/// On Linux, `NSNumber(1) is Bool` and `NSNumber(true) as? Int` both succeed, so neither cast
/// can classify a value; the class JSONSerialization uses for booleans (`__NSCFBoolean`, the
/// class of `NSNumber(value: true)`) can. Tests pin this down (JSONValueTests).
enum JSONValue {
    case string(String)
    case number(NSNumber)
    case bool(Bool)
    case null
    case array
    case object

    private static let booleanClass: AnyClass = type(of: NSNumber(value: true))

    init(_ value: Any) {
        switch value {
        case let string as String: self = .string(string)
        case let number as NSNumber:
            self = type(of: number) == Self.booleanClass ? .bool(number.boolValue) : .number(number)
        case is NSNull: self = .null
        case is [Any]: self = .array
        default: self = .object
        }
    }

    /// The value as an Int when it is an integral number in range (never a boolean).
    var int: Int? {
        if case .number(let n) = self { return n as? Int }
        return nil
    }

    /// Compact JSON text of a value returned by JSONSerialization: object keys sorted by UTF-8
    /// bytes (deterministic across processes), strings escaped as by ``appendJSONString(_:to:)``,
    /// numbers in their shortest exact form. nil for a value JSON cannot hold.
    ///
    /// Written here rather than by `JSONSerialization.data(withJSONObject:)`, which takes 20–40 µs
    /// for a small object on Linux; nesting is bounded by the parser's depth limit (512).
    static func fragment(_ value: Any) -> JSONFragment? {
        var out: [UInt8] = []
        guard write(value, to: &out) else { return nil }
        return JSONFragment(bytes: out)
    }

    private static func write(_ value: Any, to out: inout [UInt8]) -> Bool {
        switch value {
        case let string as String:
            appendJSONString(string, to: &out)
        case let number as NSNumber:
            return writeNumber(number, to: &out)
        case is NSNull:
            out.append(contentsOf: "null".utf8)
        case let array as [Any]:
            out.append(UInt8(ascii: "["))
            for (i, element) in array.enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                guard write(element, to: &out) else { return false }
            }
            out.append(UInt8(ascii: "]"))
        case let object as [String: Any]:
            out.append(UInt8(ascii: "{"))
            for (i, key) in object.keys.sorted(by: { $0.utf8.lexicographicallyPrecedes($1.utf8) }).enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                appendJSONString(key, to: &out)
                out.append(UInt8(ascii: ":"))
                guard write(object[key]!, to: &out) else { return false }
            }
            out.append(UInt8(ascii: "}"))
        default:
            return false
        }
        return true
    }

    /// Booleans as literals; integers exactly; NSDecimalNumber (JSONSerialization's type for
    /// integers beyond 64 bits and some long fractions) in its exact decimal text; doubles in
    /// Swift's shortest round-trip form. Any text that is not a JSON number is refused.
    private static func writeNumber(_ number: NSNumber, to out: inout [UInt8]) -> Bool {
        if type(of: number) == booleanClass {
            out.append(contentsOf: (number.boolValue ? "true" : "false").utf8)
            return true
        }
        let text: String
        if let decimal = number as? NSDecimalNumber {
            text = decimal.stringValue
        } else {
            switch number.objCType.pointee {
            case 0x63, 0x73, 0x69, 0x6C, 0x71:  // c s i l q: signed integers
                text = String(number.int64Value)
            case 0x43, 0x53, 0x49, 0x4C, 0x51:  // C S I L Q: unsigned integers
                text = String(number.uint64Value)
            default:
                let double = number.doubleValue
                guard double.isFinite else { return false }
                text = double.description
            }
        }
        guard isJSONNumber(text) else { return false }
        out.append(contentsOf: text.utf8)
        return true
    }

    /// RFC 8259 §6: `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`
    static func isJSONNumber(_ text: String) -> Bool {
        var bytes = text.utf8.makeIterator()
        var c = bytes.next()
        func digits() -> Int {
            var n = 0
            while let d = c, d &- 0x30 < 10 { n += 1; c = bytes.next() }
            return n
        }
        if c == UInt8(ascii: "-") { c = bytes.next() }
        if c == UInt8(ascii: "0") { c = bytes.next() } else if digits() == 0 { return false }
        if c == UInt8(ascii: ".") { c = bytes.next(); if digits() == 0 { return false } }
        if c == UInt8(ascii: "e") || c == UInt8(ascii: "E") {
            c = bytes.next()
            if c == UInt8(ascii: "+") || c == UInt8(ascii: "-") { c = bytes.next() }
            if digits() == 0 { return false }
        }
        return c == nil
    }

    /// Parses `text` as one JSON value; nil when malformed.
    static func parse(_ text: UnsafeRawBufferPointer) -> Any? {
        guard let base = text.baseAddress, text.count > 0 else { return nil }
        let data = Data(bytesNoCopy: UnsafeMutableRawPointer(mutating: base), count: text.count, deallocator: .none)
        return try? JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed])
    }
}
