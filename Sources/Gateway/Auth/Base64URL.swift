import Foundation

/// Base64url without padding (RFC 4648 §5), as JWS compact serialization uses it (RFC 7515 §2, §3.1).
///
/// Decoding is strict: only `A–Z a–z 0–9 - _` are accepted, `=` padding and whitespace are refused, and a
/// length of 1 modulo 4 (which no byte string encodes to) is refused. The actual decoding is Foundation's.
public enum Base64URL {
    /// The bytes `text` encodes, or nil when it is not strict unpadded base64url.
    public static func decode<S: StringProtocol>(_ text: S) -> [UInt8]? {
        decode(bytes: text.utf8)
    }

    /// The bytes the base64url text `utf8` encodes, or nil when it is not strict unpadded base64url.
    public static func decode<C: Collection>(bytes utf8: C) -> [UInt8]? where C.Element == UInt8 {
        guard utf8.count % 4 != 1 else { return nil }
        var translated: [UInt8] = []
        translated.reserveCapacity(utf8.count + 3)
        for c in utf8 {
            switch c {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"):
                translated.append(c)
            case UInt8(ascii: "-"): translated.append(UInt8(ascii: "+"))
            case UInt8(ascii: "_"): translated.append(UInt8(ascii: "/"))
            default: return nil
            }
        }
        while translated.count % 4 != 0 { translated.append(UInt8(ascii: "=")) }
        guard let data = Data(base64Encoded: Data(translated)) else { return nil }
        return [UInt8](data)
    }

    /// Unpadded base64url text of `bytes` (Foundation's Base64, then the URL-safe alphabet).
    public static func encode<C: Collection>(_ bytes: C) -> String where C.Element == UInt8 {
        var s = Data(bytes).base64EncodedString()
        while s.hasSuffix("=") { s.removeLast() }
        return String(s.map { $0 == "+" ? "-" : ($0 == "/" ? "_" : $0) })
    }
}
