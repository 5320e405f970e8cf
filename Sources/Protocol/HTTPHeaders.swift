/// One header field: name and value as received or to be sent (RFC 9110 §5).
public struct HTTPHeader: Hashable, Sendable {
    /// The field name, e.g. "Sec-WebSocket-Key". Compared case-insensitively by ``HTTPHeaders``.
    public var name: String
    /// The field value with leading and trailing whitespace removed.
    public var value: String

    /// A header field `name: value`.
    public init(_ name: String, _ value: String) {
        self.name = name
        self.value = value
    }
}

/// An ordered list of header fields, in wire order, duplicates kept.
///
/// Lookups match names ignoring ASCII case (RFC 7230 §3.2) by a linear scan, which beats
/// hashing for the ten-or-so fields a request carries.
public struct HTTPHeaders: Sendable, Sequence, Equatable {
    @usableFromInline var storage: [HTTPHeader]

    /// An empty list.
    public init() { storage = [] }

    /// The given fields, in order.
    public init(_ headers: [HTTPHeader]) { storage = headers }

    /// Number of fields, duplicates counted.
    public var count: Int { storage.count }

    /// True when there are no fields.
    public var isEmpty: Bool { storage.isEmpty }

    /// Appends a field at the end.
    public mutating func append(_ header: HTTPHeader) { storage.append(header) }

    /// Appends `name: value` at the end.
    public mutating func append(name: String, value: String) { storage.append(HTTPHeader(name, value)) }

    /// The first value of `name`, the name matched case-insensitively (RFC 7230 §3.2); nil when absent.
    public subscript(name: String) -> String? {
        for header in storage where asciiCaseInsensitiveEquals(header.name, name) { return header.value }
        return nil
    }

    /// Every value of `name` in wire order (one element per field line; not split on commas).
    public func values(_ name: String) -> [String] {
        storage.compactMap { asciiCaseInsensitiveEquals($0.name, name) ? $0.value : nil }
    }

    /// True when any value of `name`, split on commas and trimmed, equals `token` ignoring ASCII case
    /// (e.g. `Connection: keep-alive, Upgrade` contains "upgrade").
    public func containsToken(_ token: String, in name: String) -> Bool {
        for header in storage where asciiCaseInsensitiveEquals(header.name, name) {
            var found = false
            forEachListElement(header.value) { element in
                if asciiCaseInsensitiveEquals(element, token.utf8) { found = true }
                return !found
            }
            if found { return true }
        }
        return false
    }

    /// Iterates the fields in wire order.
    public func makeIterator() -> IndexingIterator<[HTTPHeader]> { storage.makeIterator() }
}

/// Byte-wise equality with ASCII letters folded to lower case.
@usableFromInline
func asciiCaseInsensitiveEquals(_ a: String, _ b: String) -> Bool {
    asciiCaseInsensitiveEquals(Substring(a).utf8, b.utf8)
}

@usableFromInline
func asciiCaseInsensitiveEquals(_ a: Substring.UTF8View, _ b: String.UTF8View) -> Bool {
    guard a.count == b.count else { return false }
    for (x, y) in zip(a, b) where x != y {
        if asciiLower(x) != asciiLower(y) { return false }
    }
    return true
}

@inline(__always) func asciiLower(_ c: UInt8) -> UInt8 {
    c &- 0x41 < 26 ? c | 0x20 : c
}

/// Calls `body` with each comma-separated element of `list`, trimmed of spaces and tabs, empty
/// elements skipped (RFC 9110 §5.6.1); stops when `body` returns false.
func forEachListElement(_ list: String, _ body: (Substring.UTF8View) -> Bool) {
    let utf8 = Substring(list).utf8
    var start = utf8.startIndex
    while start < utf8.endIndex {
        let end = utf8[start...].firstIndex(of: UInt8(ascii: ",")) ?? utf8.endIndex
        var lo = start, hi = end
        while lo < hi, utf8[lo] == 0x20 || utf8[lo] == 0x09 { lo = utf8.index(after: lo) }
        while lo < hi {
            let before = utf8.index(before: hi)
            guard utf8[before] == 0x20 || utf8[before] == 0x09 else { break }
            hi = before
        }
        if lo < hi, !body(utf8[lo..<hi]) { return }
        start = end < utf8.endIndex ? utf8.index(after: end) : end
    }
}
