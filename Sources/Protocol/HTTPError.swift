/// An HTTP-level failure that ends a request with an error response.
///
/// Thrown by ``HTTPHeadParser``, ``HTTPResponseHeadParser`` and ``WebSocketHandshake/validate(_:supportedSubprotocols:)``;
/// turn it into bytes with ``HTTPResponse/init(error:)`` and ``HTTPResponse/serialize()``.
public struct HTTPError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The status to answer with, e.g. 400, 426, 431.
    public var status: HTTPStatus
    /// Short human text, used as the response body, e.g. "missing Host header".
    public var reason: String
    /// Headers the response must carry, e.g. `Allow: GET` for 405 or `Sec-WebSocket-Version: 13` for 426.
    public var headers: [HTTPHeader]

    /// An error answered with `status`, body `reason`, and `headers`.
    public init(status: HTTPStatus, reason: String, headers: [HTTPHeader] = []) {
        self.status = status
        self.reason = reason
        self.headers = headers
    }

    /// "426 Upgrade Required: missing Upgrade: websocket".
    public var description: String { "\(status): \(reason)" }
}
