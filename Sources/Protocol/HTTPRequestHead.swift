/// A parsed HTTP/1.x request line and header fields (RFC 9112 §3, §5), as produced by ``HTTPHeadParser``.
public struct HTTPRequestHead: Sendable, Equatable {
    /// The method token as sent, e.g. "GET" (case-sensitive, RFC 9110 §9.1).
    public var method: String
    /// The request target as sent, e.g. "/ws?room=lobby".
    public var target: String
    /// `target` before the first '?', e.g. "/ws" (not percent-decoded).
    public var path: String
    /// `target` after the first '?', nil when there is no '?' (not percent-decoded).
    public var query: String?
    /// The `1` of `HTTP/1.1`.
    public var versionMajor: Int
    /// The second `1` of `HTTP/1.1`.
    public var versionMinor: Int
    /// The header fields in wire order.
    public var headers: HTTPHeaders

    /// A head for `target`, with ``path`` and ``query`` split from it at the first '?'.
    public init(method: String, target: String, versionMajor: Int = 1, versionMinor: Int = 1, headers: HTTPHeaders = HTTPHeaders()) {
        self.method = method
        self.target = target
        if let q = target.utf8.firstIndex(of: UInt8(ascii: "?")) {
            path = String(target[..<q])
            query = String(target[target.index(after: q)...])
        } else {
            path = target
            query = nil
        }
        self.versionMajor = versionMajor
        self.versionMinor = versionMinor
        self.headers = headers
    }

    /// All fields given (the parser has already split the target).
    init(method: String, target: String, path: String, query: String?, versionMajor: Int, versionMinor: Int, headers: HTTPHeaders) {
        self.method = method
        self.target = target
        self.path = path
        self.query = query
        self.versionMajor = versionMajor
        self.versionMinor = versionMinor
        self.headers = headers
    }

    /// First value of query parameter `name`, percent-decoded ('+' as space), nil when absent.
    ///
    /// Names are compared after decoding, case-sensitively. A parameter without '=' has the
    /// value "". Invalid `%` escapes are kept literally; invalid UTF-8 becomes U+FFFD.
    public func queryParameter(_ name: String) -> String? { queryValues(name, limit: 1).first }

    /// Every value of query parameter `name` in the order given, decoded as ``queryParameter(_:)`` decodes
    /// (e.g. ["a", "b"] for `?join=a&join=b`); empty when absent. At most `limit` values are returned.
    public func queryParameters(_ name: String, limit: Int = .max) -> [String] { queryValues(name, limit: limit) }

    private func queryValues(_ name: String, limit: Int) -> [String] {
        guard let query, limit > 0 else { return [] }
        let wanted = Array(name.utf8)
        var result: [String] = []
        var q = query
        q.withUTF8 { bytes in
            var start = 0
            while start <= bytes.count, result.count < limit {
                var end = start
                while end < bytes.count, bytes[end] != UInt8(ascii: "&") { end += 1 }
                if end > start {
                    var eq = start
                    while eq < end, bytes[eq] != UInt8(ascii: "=") { eq += 1 }
                    let key = percentDecode(UnsafeBufferPointer(rebasing: bytes[start..<eq]))
                    if key == wanted {
                        let value = eq < end ? percentDecode(UnsafeBufferPointer(rebasing: bytes[(eq + 1)..<end])) : []
                        result.append(String(decoding: value, as: UTF8.self))
                    }
                }
                start = end + 1
            }
        }
        return result
    }
}

/// application/x-www-form-urlencoded decoding of one name or value (WHATWG URL §5.1): '+' is a space.
func percentDecode(_ bytes: UnsafeBufferPointer<UInt8>) -> [UInt8] {
    var out: [UInt8] = []
    out.reserveCapacity(bytes.count)
    var i = 0
    while i < bytes.count {
        let c = bytes[i]
        if c == UInt8(ascii: "+") {
            out.append(0x20)
        } else if c == UInt8(ascii: "%"), i + 2 < bytes.count, let hi = hexValue(bytes[i + 1]), let lo = hexValue(bytes[i + 2]) {
            out.append(hi << 4 | lo)
            i += 2
        } else {
            out.append(c)
        }
        i += 1
    }
    return out
}

/// The value 0-15 of one hexadecimal digit (`HEXDIG`, RFC 5234 B.1; either case), nil for any other byte:
/// percent-encoding (RFC 3986 §2.1), chunk sizes (RFC 9112 §7.1), JSON `\u` escapes (RFC 8259 §7).
@inline(__always) public func hexValue(_ c: UInt8) -> UInt8? {
    switch c {
    case UInt8(ascii: "0")...UInt8(ascii: "9"): c - UInt8(ascii: "0")
    case UInt8(ascii: "a")...UInt8(ascii: "f"): c - UInt8(ascii: "a") + 10
    case UInt8(ascii: "A")...UInt8(ascii: "F"): c - UInt8(ascii: "A") + 10
    default: nil
    }
}
