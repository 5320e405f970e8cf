/// A complete HTTP/1.1 response to serialize: status, headers and a body held in memory.
///
/// Used for every non-101 answer on the public port (errors) and for the admin endpoints.
public struct HTTPResponse: Sendable {
    /// The status line's code and reason.
    public var status: HTTPStatus
    /// Extra headers, written in order. `Content-Length` is always computed from ``body``
    /// (a caller-set one is dropped).
    public var headers: [HTTPHeader]
    /// The body bytes.
    public var body: [UInt8]

    /// A response with `status`, `headers` and `body` (default: none, empty).
    public init(status: HTTPStatus, headers: [HTTPHeader] = [], body: [UInt8] = []) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    /// text/plain body "reason\n", the error's headers kept.
    public init(error: HTTPError) {
        var headers = error.headers
        headers.append(HTTPHeader("Content-Type", "text/plain; charset=utf-8"))
        self.init(status: error.status, headers: headers, body: Array((error.reason + "\n").utf8))
    }

    /// JSON body (application/json).
    public static func json(_ status: HTTPStatus, _ body: [UInt8], headers: [HTTPHeader] = []) -> HTTPResponse {
        HTTPResponse(status: status, headers: headers + [HTTPHeader("Content-Type", "application/json")], body: body)
    }

    /// Headers sent on every response (unless the caller set the same name) so that an error page
    /// can never be sniffed, cached or used to run script.
    static let hardening: [HTTPHeader] = [
        HTTPHeader("X-Content-Type-Options", "nosniff"),
        HTTPHeader("Cache-Control", "no-store"),
        HTTPHeader("Content-Security-Policy", "default-src 'none'")
    ]

    /// "HTTP/1.1 <code> <reason>\r\n" + headers + Content-Length + `Connection: close` (unless the caller set Connection)
    /// + hardening headers on every response: `X-Content-Type-Options: nosniff`, `Cache-Control: no-store`,
    /// `Content-Security-Policy: default-src 'none'`. Never a Server header.
    ///
    /// 1xx and 204 responses get no Content-Length (RFC 9110 §8.6). CR, LF and NUL in caller-supplied
    /// names and values are replaced by spaces so that no value can inject a header line.
    public func serialize() -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(256 + body.count)
        out.append(contentsOf: "HTTP/1.1 ".utf8)
        appendDecimal(status.rawValue, to: &out)
        out.append(0x20)
        out.append(contentsOf: status.reasonPhrase.utf8)
        out.append(contentsOf: "\r\n".utf8)
        var hasConnection = false
        for header in headers {
            if asciiCaseInsensitiveEquals(header.name, "Content-Length") || asciiCaseInsensitiveEquals(header.name, "Server") {
                continue
            }
            if asciiCaseInsensitiveEquals(header.name, "Connection") { hasConnection = true }
            appendHeader(header, to: &out)
        }
        for header in Self.hardening where !headers.contains(where: { asciiCaseInsensitiveEquals($0.name, header.name) }) {
            appendHeader(header, to: &out)
        }
        if !hasConnection { out.append(contentsOf: "Connection: close\r\n".utf8) }
        if status.rawValue >= 200, status.rawValue != 204 {
            out.append(contentsOf: "Content-Length: ".utf8)
            appendDecimal(body.count, to: &out)
            out.append(contentsOf: "\r\n".utf8)
        }
        out.append(contentsOf: "\r\n".utf8)
        out.append(contentsOf: body)
        return out
    }
}

/// Appends "name: value\r\n", replacing CR, LF and NUL with spaces.
func appendHeader(_ header: HTTPHeader, to out: inout [UInt8]) {
    for c in header.name.utf8 { out.append(c == 0x0D || c == 0x0A || c == 0 ? 0x20 : c) }
    out.append(UInt8(ascii: ":"))
    out.append(0x20)
    for c in header.value.utf8 { out.append(c == 0x0D || c == 0x0A || c == 0 ? 0x20 : c) }
    out.append(0x0D)
    out.append(0x0A)
}

/// Appends the decimal digits of `value` (with '-' when negative) without creating a String.
func appendDecimal(_ value: Int, to out: inout [UInt8]) {
    if value < 0 { out.append(UInt8(ascii: "-")) }
    var magnitude = value.magnitude
    var digits: (UInt64, UInt64, UInt64) = (0, 0, 0)  // 24 bytes: room for 20 digits
    var count = 0
    withUnsafeMutableBytes(of: &digits) { raw in
        repeat {
            raw[23 - count] = UInt8(truncatingIfNeeded: magnitude % 10) + 0x30
            magnitude /= 10
            count += 1
        } while magnitude > 0
        out.append(contentsOf: UnsafeRawBufferPointer(rebasing: raw[(24 - count)...]))
    }
}
