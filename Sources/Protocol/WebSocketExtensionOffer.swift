/// One element of a `Sec-WebSocket-Extensions` list: an extension name and its parameters
/// (RFC 6455 §9.1), e.g. `permessage-deflate; client_max_window_bits; server_max_window_bits=10`.
///
/// Names are kept as sent; compare them with ``WebSocketExtensionOffer/hasName(_:)``. A quoted
/// parameter value is unescaped; RFC 6455 §9.1 requires the result to be a token, and an element
/// where it is not is reported with `isWellFormed == false` rather than dropped, so that the caller
/// can decline exactly that offer and still consider the next one.
public struct WebSocketExtensionOffer: Sendable, Equatable {
    /// One `name[=value]` parameter; `value` nil when the parameter has no `=`.
    public struct Parameter: Sendable, Equatable {
        /// The parameter name as sent, e.g. "client_max_window_bits".
        public var name: String
        /// The value after unescaping a quoted-string, or nil for a parameter without a value.
        public var value: String?

        /// `name` with an optional `value`.
        public init(_ name: String, _ value: String? = nil) {
            self.name = name
            self.value = value
        }
    }

    /// The extension token as sent, e.g. "permessage-deflate". Empty when the element is malformed
    /// before its name ended.
    public var name: String
    /// Parameters in the order sent, duplicates kept.
    public var parameters: [Parameter]
    /// False when the element breaks the §9.1 grammar (a bad character, an unclosed quote, a
    /// quoted value that is not a token, an empty parameter); such an offer must be declined.
    public var isWellFormed: Bool

    /// An element with the given parts.
    public init(name: String, parameters: [Parameter] = [], isWellFormed: Bool = true) {
        self.name = name
        self.parameters = parameters
        self.isWellFormed = isWellFormed
    }

    /// Whether the extension name equals `name` ignoring ASCII case.
    public func hasName(_ name: String) -> Bool { asciiCaseInsensitiveEquals(self.name, name) }

    /// Every element of every `Sec-WebSocket-Extensions` field of `headers`, in wire order
    /// (fields are concatenated as one list, RFC 9110 §5.3).
    public static func parse(_ headers: HTTPHeaders) -> [WebSocketExtensionOffer] {
        headers.values("Sec-WebSocket-Extensions").flatMap { parse($0) }
    }

    /// The elements of one field value. Commas inside quoted strings do not split elements;
    /// empty elements are skipped (RFC 9110 §5.6.1). Never fails: a malformed element comes back
    /// with `isWellFormed == false`, and an unclosed quote makes the rest of the value one such element.
    public static func parse(_ value: String) -> [WebSocketExtensionOffer] {
        var result: [WebSocketExtensionOffer] = []
        withUTF8Bytes(value) { bytes in
            var parser = ElementParser(bytes: bytes)
            while let element = parser.nextElement() { result.append(element) }
        }
        return result
    }
}

/// A cursor over one header value; each `nextElement` consumes up to and including the next
/// comma that is outside a quoted string.
private struct ElementParser {
    let bytes: UnsafeBufferPointer<UInt8>
    var index = 0

    init(bytes: UnsafeBufferPointer<UInt8>) { self.bytes = bytes }

    private var current: UInt8? { index < bytes.count ? bytes[index] : nil }

    private mutating func skipWhitespace() {
        while let c = current, c == 0x20 || c == 0x09 { index += 1 }
    }

    private mutating func token() -> String? {
        let start = index
        while let c = current, isTokenChar(c) { index += 1 }
        guard index > start else { return nil }
        return String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<index]), as: UTF8.self)
    }

    /// A quoted-string starting at `"`, unescaped; nil when it is not closed.
    private mutating func quotedString() -> String? {
        index += 1
        var out: [UInt8] = []
        while let c = current {
            index += 1
            switch c {
            case UInt8(ascii: "\""): return String(decoding: out, as: UTF8.self)
            case UInt8(ascii: "\\"):
                guard let escaped = current else { return nil }
                index += 1
                out.append(escaped)
            default: out.append(c)
            }
        }
        return nil
    }

    /// Skips to just past the next comma outside quotes (or the end): the rest of a malformed element.
    private mutating func skipElement() {
        var quoted = false
        while let c = current {
            index += 1
            if c == UInt8(ascii: "\\"), quoted {
                if current != nil { index += 1 }
            } else if c == UInt8(ascii: "\"") {
                quoted.toggle()
            } else if c == UInt8(ascii: ","), !quoted {
                return
            }
        }
    }

    mutating func nextElement() -> WebSocketExtensionOffer? {
        // Empty elements (", ,") are allowed and skipped.
        while true {
            skipWhitespace()
            guard let c = current else { return nil }
            if c == UInt8(ascii: ",") { index += 1; continue }
            break
        }
        var element = WebSocketExtensionOffer(name: "")
        func malformed(_ parser: inout ElementParser) -> WebSocketExtensionOffer {
            parser.skipElement()
            element.isWellFormed = false
            return element
        }
        guard let name = token() else { return malformed(&self) }
        element.name = name
        while true {
            skipWhitespace()
            guard let c = current else { return element }
            if c == UInt8(ascii: ",") { index += 1; return element }
            guard c == UInt8(ascii: ";") else { return malformed(&self) }
            index += 1
            skipWhitespace()
            guard let parameterName = token() else { return malformed(&self) }
            skipWhitespace()
            var value: String?
            if current == UInt8(ascii: "=") {
                index += 1
                skipWhitespace()
                if current == UInt8(ascii: "\"") {
                    // §9.1: after unescaping, a quoted value must still be a token.
                    guard let unquoted = quotedString(), !unquoted.isEmpty, unquoted.utf8.allSatisfy(isTokenChar) else {
                        return malformed(&self)
                    }
                    value = unquoted
                } else {
                    guard let plain = token() else { return malformed(&self) }
                    value = plain
                }
            }
            element.parameters.append(.init(parameterName, value))
        }
    }
}

/// tchar of RFC 9110 §5.6.2: ALPHA, DIGIT and ! # $ % & ' * + - . ^ _ ` | ~
@inline(__always)
private func isTokenChar(_ c: UInt8) -> Bool {
    switch c {
    case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"):
        return true
    case UInt8(ascii: "!"), UInt8(ascii: "#"), UInt8(ascii: "$"), UInt8(ascii: "%"), UInt8(ascii: "&"), UInt8(ascii: "'"),
        UInt8(ascii: "*"), UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "^"), UInt8(ascii: "_"),
        UInt8(ascii: "`"), UInt8(ascii: "|"), UInt8(ascii: "~"):
        return true
    default:
        return false
    }
}
