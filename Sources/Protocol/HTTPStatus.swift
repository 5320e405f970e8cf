/// An HTTP response status code (RFC 9110 §15).
///
/// A struct rather than a closed enum so that any code (e.g. one read from a response) can be
/// represented; ``reasonPhrase`` is "Unknown" for codes without a static member here.
public struct HTTPStatus: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    /// The 3-digit status code, e.g. 404.
    public var rawValue: Int

    /// Wraps any code; use 100...599.
    public init(rawValue: Int) { self.rawValue = rawValue }

    /// 101 Switching Protocols: the WebSocket upgrade succeeded (RFC 6455 §4.2.2).
    public static let switchingProtocols = HTTPStatus(rawValue: 101)
    /// 200 OK.
    public static let ok = HTTPStatus(rawValue: 200)
    /// 202 Accepted: e.g. a publish that was queued.
    public static let accepted = HTTPStatus(rawValue: 202)
    /// 400 Bad Request: malformed head or invalid handshake.
    public static let badRequest = HTTPStatus(rawValue: 400)
    /// 401 Unauthorized: missing or invalid credentials.
    public static let unauthorized = HTTPStatus(rawValue: 401)
    /// 403 Forbidden: valid credentials without the right (e.g. a rejected Origin).
    public static let forbidden = HTTPStatus(rawValue: 403)
    /// 404 Not Found.
    public static let notFound = HTTPStatus(rawValue: 404)
    /// 405 Method Not Allowed: send with an `Allow` header.
    public static let methodNotAllowed = HTTPStatus(rawValue: 405)
    /// 408 Request Timeout: the head did not arrive before the deadline.
    public static let requestTimeout = HTTPStatus(rawValue: 408)
    /// 413 Payload Too Large (RFC 9110 §15.5.14 "Content Too Large").
    public static let payloadTooLarge = HTTPStatus(rawValue: 413)
    /// 426 Upgrade Required: a plain GET on the WebSocket path, or an unsupported WebSocket version (RFC 6455 §4.4).
    public static let upgradeRequired = HTTPStatus(rawValue: 426)
    /// 429 Too Many Requests (RFC 6585 §4).
    public static let tooManyRequests = HTTPStatus(rawValue: 429)
    /// 431 Request Header Fields Too Large: head over its byte limit or too many header lines (RFC 6585 §5).
    public static let requestHeaderFieldsTooLarge = HTTPStatus(rawValue: 431)
    /// 500 Internal Server Error.
    public static let internalServerError = HTTPStatus(rawValue: 500)
    /// 503 Service Unavailable: draining, overloaded or a dependency is down (send `Retry-After`).
    public static let serviceUnavailable = HTTPStatus(rawValue: 503)
    /// 504 Gateway Timeout: an upstream (Redis) took the request and its answer was lost; the outcome is unknown.
    public static let gatewayTimeout = HTTPStatus(rawValue: 504)

    /// The standard reason phrase, e.g. "Not Found"; "Unknown" for codes not listed above.
    public var reasonPhrase: String {
        switch rawValue {
        case 101: "Switching Protocols"
        case 200: "OK"
        case 202: "Accepted"
        case 204: "No Content"
        case 400: "Bad Request"
        case 401: "Unauthorized"
        case 403: "Forbidden"
        case 404: "Not Found"
        case 405: "Method Not Allowed"
        case 408: "Request Timeout"
        case 413: "Payload Too Large"
        case 426: "Upgrade Required"
        case 429: "Too Many Requests"
        case 431: "Request Header Fields Too Large"
        case 500: "Internal Server Error"
        case 502: "Bad Gateway"
        case 503: "Service Unavailable"
        case 504: "Gateway Timeout"
        default: "Unknown"
        }
    }

    /// "404 Not Found".
    public var description: String { "\(rawValue) \(reasonPhrase)" }
}
