import Foundation
import Runtime

/// Base64url without padding (RFC 4648 §5), as JWS compact serialization uses it (RFC 7515 §2, §3.1).
///
/// Decoding is strict: only `A–Z a–z 0–9 - _` are accepted, `=` padding and whitespace are refused, and a
/// length of 1 modulo 4 (which no byte string encodes to) is refused. The actual decoding is Foundation's.
public enum Base64URL {
    /// The bytes `text` encodes, or nil when it is not strict unpadded base64url.
    public static func decode<S: StringProtocol>(_ text: S) -> [UInt8]? {
        decode(bytes: Array(text.utf8))
    }

    /// The bytes the base64url text `utf8` encodes, or nil when it is not strict unpadded base64url.
    public static func decode<C: Collection>(bytes utf8: C) -> [UInt8]? where C.Element == UInt8 {
        let input = utf8 as? [UInt8] ?? Array(utf8)
        guard input.count % 4 != 1 else { return nil }
        // Translate to the standard alphabet with padding (one tight pass), then let Foundation decode.
        var translated = [UInt8](repeating: UInt8(ascii: "="), count: (input.count + 3) & ~3)
        let ok = input.withUnsafeBufferPointer { src in
            translated.withUnsafeMutableBufferPointer { dst in
                for i in 0..<src.count {
                    let c = src[i]
                    switch c {
                    case 0x41...0x5A, 0x61...0x7A, 0x30...0x39: dst[i] = c
                    case UInt8(ascii: "-"): dst[i] = UInt8(ascii: "+")
                    case UInt8(ascii: "_"): dst[i] = UInt8(ascii: "/")
                    default: return false
                    }
                }
                return true
            }
        }
        guard ok, let data = Data(base64Encoded: Data(translated)) else { return nil }
        return [UInt8](data)
    }

    /// Unpadded base64url text of `bytes` (Foundation's Base64, then the URL-safe alphabet).
    public static func encode<C: Collection>(_ bytes: C) -> String where C.Element == UInt8 {
        var s = Data(bytes).base64EncodedString()
        while s.hasSuffix("=") { s.removeLast() }
        return String(s.map { $0 == "+" ? "-" : ($0 == "/" ? "_" : $0) })
    }
}
