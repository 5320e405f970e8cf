import ClusterBus
import Foundation
import Protocol
import Runtime

/// Everything a node needs to authenticate and admit connections, built once from ``Config`` and shared by
/// every loop (all members immutable or internally locked).
///
/// - ``origins``: the Origin allowlist (RFC 6455 §10.2), checked first (403).
/// - ``admission``: per-IP connection and handshake limits (429 / 503).
/// - ``verifier``: JWT verification (RFC 7519) when a secret or public key is configured.
/// - ``backend``: the auth backend when `--auth-url` is set; called after local verification succeeds (or
///   with the opaque token when no JWT key is configured). Its answer wins over the token's claims.
///
/// With none of them configured the node runs in dev mode: every handshake is admitted, every room allowed,
/// and the startup log carries a warning.
public final class AuthService: Sendable {
    /// JWT verification, nil without keys.
    public let verifier: JWTVerifier?
    /// The auth backend, nil without `--auth-url`.
    public let backend: AuthBackend?
    /// The Origin allowlist.
    public let origins: OriginPolicy
    /// Per-IP admission.
    public let admission: Admission
    /// The cookie carrying a token, nil when cookies are not read.
    public let tokenCookie: String?
    /// Milliseconds a token-less connection has to send `auth`.
    public let authTimeoutMs: Int
    /// Milliseconds after `token_expired` to re-authenticate.
    public let graceMs: Int
    /// Milliseconds before `exp` that `token_expiring` is sent (0 = never).
    public let expiringNoticeMs: Int
    /// Seconds of leeway also applied to the expiry of open connections.
    public let leewaySeconds: Double
    /// True when a token is required (JWT keys or a backend configured).
    public let requiresToken: Bool
    /// True when any handshake check is configured (token, Origin list or no-Origin refusal, per-IP limits).
    public let isActive: Bool

    /// Builds the service. Keys come from `config.auth.keys` (loaded by `Config.parse`), else are loaded here;
    /// a key set that cannot be loaded leaves a verifier that refuses every token (fail closed). A host name
    /// in `--auth-url` is resolved here (blocking; startup only).
    public init(config: Config) {
        let a = config.auth
        leewaySeconds = Double(a.jwtLeewayMs) / 1000
        if a.jwtSecret != nil || !a.jwtPublicKeys.isEmpty {
            let loaded: JWTKeySet? = a.keys ?? ((try? a.loadKeys()) ?? nil)
            let keys = loaded ?? (try! JWTKeySet(secret: nil, publicKeys: []))
            verifier = JWTVerifier(
                keys: keys, issuer: a.jwtIssuer, audience: a.jwtAudience, leewaySeconds: Double(a.jwtLeewayMs) / 1000,
                roomsClaim: a.roomsClaim, publishClaim: a.publishClaim, requireExp: a.jwtRequireExp)
        } else {
            verifier = nil
        }
        if let url = a.authURL, let endpoint = try? AuthEndpoint(url: url) {
            endpoint.startResolving()
            backend = AuthBackend(
                endpoint: endpoint,
                policy: RetryPolicy(
                    retries: a.authRetries, baseMs: a.authBackoffBaseMs, capMs: a.authBackoffCapMs,
                    tryTimeoutMs: a.authTryTimeoutMs, deadlineMs: a.authDeadlineMs),
                breaker: CircuitBreaker(threshold: a.authBreakerThreshold, cooldownMs: a.authBreakerCooldownMs),
                cache: AuthCache(ttlMs: a.authCacheTTLMs, capacity: a.authCacheSize), maxInflight: a.authMaxInflight)
        } else {
            backend = nil
        }
        origins =
            (try? OriginPolicy(allowed: a.allowedOrigins, allowMissing: a.allowNoOrigin))
            ?? (try! OriginPolicy(allowed: ["null"], allowMissing: false))  // unparsable list (not via parse): refuse browsers
        admission = Admission(maxConnectionsPerIP: a.maxConnectionsPerIP, handshakesPerSecond: a.maxHandshakesPerIP)
        tokenCookie = a.tokenCookie
        authTimeoutMs = a.authTimeoutMs
        graceMs = a.tokenGraceMs
        expiringNoticeMs = a.tokenExpiringNoticeMs
        requiresToken = a.requiresToken
        isActive = requiresToken || !origins.allowsAnyOrigin || !origins.allowsMissingOrigin || admission.isActive
    }

    /// The token of a handshake, in this order: `Authorization: Bearer <token>` (RFC 6750 §2.1, scheme
    /// case-insensitive), the `token` query parameter (RFC 6750 §2.3), the `--token-cookie` cookie.
    /// nil when none is present; a present but empty value is returned as "" (and then refused).
    public func token(from head: HTTPRequestHead) -> String? {
        for value in head.headers.values("Authorization") {
            let v = value.trimmingCharacters(in: .whitespaces)
            if v.count >= 6, v.prefix(6).lowercased() == "bearer", v.count == 6 || v[v.index(v.startIndex, offsetBy: 6)] == " " {
                return String(v.dropFirst(6)).trimmingCharacters(in: .whitespaces)
            }
        }
        if let q = head.queryParameter("token") { return q }
        if let name = tokenCookie {
            for line in head.headers.values("Cookie") {
                for pair in line.split(separator: ";") {
                    let p = pair.trimmingCharacters(in: .whitespaces)
                    guard let eq = p.firstIndex(of: "="), p[..<eq] == name else { continue }
                    var value = p[p.index(after: eq)...]
                    if value.count >= 2, value.hasPrefix("\""), value.hasSuffix("\"") { value = value.dropFirst().dropLast() }
                    return String(value)
                }
            }
        }
        return nil
    }

    /// Authenticates `token` for a connection on `loop` (call on that loop): JWT verification first, then the
    /// backend if configured. Returns the outcome when it is known at once; otherwise nil, and `completion`
    /// runs later on `loop` (never before this returns).
    func authenticate(
        token: String, context: @autoclosure () -> AuthRequestContext, on loop: GatewayLoop,
        completion: @escaping @Sendable (AuthOutcome) -> Void
    ) -> AuthOutcome? {
        guard !token.isEmpty else { return .invalid(.malformed("empty")) }
        // A console ticket (ConsoleTickets.swift) is never a JWT nor a backend credential: answered here alone.
        if token.hasPrefix(ConsoleTickets.prefix) {
            guard let identity = ConsoleTickets.shared.redeem(token, now: monotonicMilliseconds(), wallNowMs: wallClockMilliseconds()) else {
                return .rejected(reason: "unknown, spent or expired console ticket")
            }
            return .admitted(identity)
        }
        var local: AuthIdentity?
        if let verifier {
            do {
                local = try verifier.verify(token, now: Double(wallClockMilliseconds()) / 1000)
            } catch {
                return .invalid(error)
            }
        }
        if let backend {
            return backend.authenticate(token: token, context: context(), on: loop, completion: completion)
        }
        guard let local else { return .rejected(reason: "no verifier configured") }
        return .admitted(local)
    }

    /// The auth-related warnings for the startup log (dev mode, Origin checks off with cookie tokens, ...).
    public func startupWarnings() -> [String] {
        var w: [String] = []
        if !requiresToken {
            w.append("authentication is OFF (dev mode): no --jwt-secret, --jwt-public-key or --auth-url, so anyone may connect, join and publish to any room")
        }
        if origins.allowsAnyOrigin && (tokenCookie != nil || !requiresToken) {
            w.append("no --allowed-origins: any web page may open WebSockets here (cross-site WebSocket hijacking); set it for browser clients")
        }
        if let v = verifier, v.keys.secret == nil && v.keys.publicKeys.isEmpty {
            w.append("JWT keys could not be loaded: every token will be refused")
        }
        return w
    }
}
