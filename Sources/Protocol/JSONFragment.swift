/// Raw JSON text of one value (UTF-8 bytes of any JSON value, RFC 8259 §2; scalars allowed).
///
/// Carries client payloads (`data`) and correlation ids (`id`) through the gateway without
/// re-parsing: they are spliced into outgoing frames byte for byte, so they must be valid JSON.
/// Fragments produced by ``Envelope/decode(_:maxDepth:)`` were validated by ``JSONScanner`` and
/// are the client's own text minus insignificant whitespace: object keys in the client's order
/// (duplicates inside `data` kept), string escapes as sent (`"\u00e9"` stays escaped, `"\/"`
/// stays), numbers spelled as sent (`1.0` stays `1.0`, 12345678901234567890 stays as is). `id`
/// is a string or number token exactly as sent.
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
