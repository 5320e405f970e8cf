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

    /// Compact JSON text of a value returned by JSONSerialization: keys sorted (deterministic
    /// across processes), '/' not escaped. nil only if Foundation refuses the value.
    static func fragment(_ value: Any) -> JSONFragment? {
        guard let data = try? JSONSerialization.data(withJSONObject: value, options: [.fragmentsAllowed, .sortedKeys, .withoutEscapingSlashes]) else {
            return nil
        }
        return JSONFragment(bytes: [UInt8](data))
    }

    /// Parses `text` as one JSON value; nil when malformed.
    static func parse(_ text: UnsafeRawBufferPointer) -> Any? {
        guard let base = text.baseAddress, text.count > 0 else { return nil }
        let data = Data(bytesNoCopy: UnsafeMutableRawPointer(mutating: base), count: text.count, deallocator: .none)
        return try? JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed])
    }
}
