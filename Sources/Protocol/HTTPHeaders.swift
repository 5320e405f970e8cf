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

    /// The first value of `name` and how many fields carry that name, without building an array.
    func firstValueAndCount(_ name: String) -> (first: String?, count: Int) {
        var first: String?
        var count = 0
        for header in storage where asciiCaseInsensitiveEquals(header.name, name) {
            if first == nil { first = header.value }
            count += 1
        }
        return (first, count)
    }

    /// True when any value of `name`, split on commas and trimmed, equals `token` ignoring ASCII case
    /// (e.g. `Connection: keep-alive, Upgrade` contains "upgrade").
    public func containsToken(_ token: String, in name: String) -> Bool {
        for header in storage where asciiCaseInsensitiveEquals(header.name, name) {
            var found = false
            withUTF8Bytes(token) { wanted in
                forEachListElement(header.value) { element in
                    found = asciiCaseInsensitiveEquals(element, wanted)
                    return !found
                }
            }
            if found { return true }
        }
        return false
    }

    /// Iterates the fields in wire order.
    public func makeIterator() -> IndexingIterator<[HTTPHeader]> { storage.makeIterator() }
}

/// The UTF-8 bytes of `string` (native Swift strings are contiguous UTF-8: no copy).
@inline(__always)
func withUTF8Bytes<R>(_ string: String, _ body: (UnsafeBufferPointer<UInt8>) -> R) -> R {
    var string = string
    return string.withUTF8(body)
}

/// Byte-wise equality with ASCII letters folded to lower case.
@usableFromInline
func asciiCaseInsensitiveEquals(_ a: String, _ b: String) -> Bool {
    guard a.utf8.count == b.utf8.count else { return false }
    return withUTF8Bytes(a) { x in withUTF8Bytes(b) { y in asciiCaseInsensitiveEquals(x, y) } }
}

@inline(__always)
func asciiCaseInsensitiveEquals(_ a: UnsafeBufferPointer<UInt8>, _ b: UnsafeBufferPointer<UInt8>) -> Bool {
    guard a.count == b.count else { return false }
    for i in 0..<a.count where a[i] != b[i] {
        if asciiLower(a[i]) != asciiLower(b[i]) { return false }
    }
    return true
}

@inline(__always) func asciiLower(_ c: UInt8) -> UInt8 {
    c &- 0x41 < 26 ? c | 0x20 : c
}

extension HTTPHeaders {
    /// A Content-Length value (RFC 9110 §8.6: `1*DIGIT`) as a byte count; nil for anything else (a sign,
    /// spaces, a list, more than 18 digits), so that a negative or overflowing length never reaches the body
    /// arithmetic of whoever frames the body.
    public static func contentLength(_ value: String) -> Int? {
        let u = value.utf8
        guard !u.isEmpty, u.count <= 18 else { return nil }
        var n = 0
        for c in u {
            guard c >= UInt8(ascii: "0"), c <= UInt8(ascii: "9") else { return nil }
            n = n * 10 + Int(c - UInt8(ascii: "0"))
        }
        return n
    }
}

/// Calls `body` with each comma-separated element of `list`, trimmed of spaces and tabs, empty
/// elements skipped (RFC 9110 §5.6.1); stops when `body` returns false.
func forEachListElement(_ list: String, _ body: (UnsafeBufferPointer<UInt8>) -> Bool) {
    withUTF8Bytes(list) { bytes in
        var start = 0
        while start < bytes.count {
            var end = start
            while end < bytes.count, bytes[end] != UInt8(ascii: ",") { end += 1 }
            var lo = start
            var hi = end
            while lo < hi, bytes[lo] == 0x20 || bytes[lo] == 0x09 { lo += 1 }
            while hi > lo, bytes[hi - 1] == 0x20 || bytes[hi - 1] == 0x09 { hi -= 1 }
            if lo < hi, !body(UnsafeBufferPointer(rebasing: bytes[lo..<hi])) { return }
            start = end + 1
        }
    }
}
