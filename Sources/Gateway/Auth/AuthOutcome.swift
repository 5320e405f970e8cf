import Runtime

/// The result of authenticating one token, however it was decided (JWT, cache, backend).
public enum AuthOutcome: Sendable {
    /// The token is good: this is who the connection is.
    case admitted(AuthIdentity)
    /// The token failed local JWT verification: 401 before the upgrade, close 4002 after it.
    case invalid(JWTError)
    /// The backend answered 401/403 (or the token was empty): 401 before the upgrade, close 4002 after it.
    /// Final; never retried. `reason` is safe to send to the client.
    case rejected(reason: String)
    /// The backend could not decide (down, timing out, breaker open, overloaded): 503 with `Retry-After`
    /// before the upgrade, close 1013 after it. Never reported as a credential failure.
    case unavailable(retryAfterSeconds: Int, reason: String)
}

/// What the auth backend is told about the connection besides the token: the client address and the
/// request headers of interest.
public struct AuthRequestContext: Sendable {
    /// The client address (see `clientAddress(peer:forwardedFor:trusted:)`).
    public var clientIP: String
    /// Lower-cased header name → value, for `origin`, `user-agent`, `x-forwarded-for`, `x-request-id`.
    public var headers: [(String, String)]

    /// A context with the given address and headers.
    public init(clientIP: String, headers: [(String, String)]) {
        self.clientIP = clientIP
        self.headers = headers
    }

    /// The headers forwarded to the backend.
    public static let forwardedHeaders = ["Origin", "User-Agent", "X-Forwarded-For", "X-Request-ID"]
}
