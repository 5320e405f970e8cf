/// Raw JSON text of one value (compact UTF-8 bytes as Foundation's JSONSerialization writes it, fragments allowed).
///
/// Carries client payloads (`data`) and correlation ids (`id`) through the gateway without
/// re-parsing: they are spliced into outgoing frames byte for byte. Fragments produced by
/// ``Envelope/decode(_:)`` are parsed by JSONSerialization and rewritten compactly: no
/// whitespace, object keys sorted by UTF-8 bytes, '/' unescaped, numbers exact
/// (`true` stays `true`, 12345678901234567890 stays as is; `1.0` may become `1.0` or `1`).
public struct JSONFragment: Hashable, Sendable, CustomStringConvertible {
    /// The JSON text, UTF-8.
    public let bytes: [UInt8]

    /// Wraps `bytes`, which must already be one valid JSON value (not checked).
    public init(bytes: [UInt8]) { self.bytes = bytes }

    /// Wraps the JSON text `json` as is, e.g. `JSONFragment(#"{"text":"hi"}"#)` (not checked).
    public init(_ json: String) { bytes = Array(json.utf8) }

    /// A JSON string literal for `value`, quoted and escaped.
    public static func string(_ value: String) -> JSONFragment {
        var out: [UInt8] = []
        appendJSONString(value, to: &out)
        return JSONFragment(bytes: out)
    }

    /// A JSON number for `value`.
    public static func number(_ value: Int) -> JSONFragment {
        var out: [UInt8] = []
        appendDecimal(value, to: &out)
        return JSONFragment(bytes: out)
    }

    /// `null`.
    public static let null = JSONFragment(bytes: Array("null".utf8))

    /// The JSON text as a String.
    public var description: String { String(decoding: bytes, as: UTF8.self) }
}
