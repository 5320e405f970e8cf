/// A parsed HTTP/1.x status line and header fields (RFC 9112 §4), as produced by ``HTTPResponseHeadParser``.
public struct HTTPResponseHead: Sendable, Equatable {
    /// The 3-digit status code, e.g. 101.
    public var status: Int
    /// The reason phrase as sent (may be empty), e.g. "Switching Protocols".
    public var reason: String
    /// The minor version: 1 for `HTTP/1.1`, 0 for `HTTP/1.0`.
    public var versionMinor: Int
    /// The header fields in wire order.
    public var headers: HTTPHeaders

    /// A response head; `versionMinor` defaults to 1 (HTTP/1.1).
    public init(status: Int, reason: String, versionMinor: Int = 1, headers: HTTPHeaders = HTTPHeaders()) {
        self.status = status
        self.reason = reason
        self.versionMinor = versionMinor
        self.headers = headers
    }
}
