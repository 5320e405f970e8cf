import Foundation
import Runtime

/// The authentication, Origin and admission part of ``Config`` (flags listed in ``Config/authOptions``).
/// Durations in milliseconds.
public struct AuthSettings: Sendable {
    /// `--jwt-secret`: HMAC key for HS256/384/512 (UTF-8 bytes, or `base64:` + Base64); ≥ 32 bytes. Masked in logs.
    public var jwtSecret: String? = nil
    /// `--jwt-public-key`, repeatable: `path` or `kid=path` of a PEM public key (RSA ≥ 2048 bits, EC P-256/P-384).
    public var jwtPublicKeys: [String] = []
    /// `--jwt-issuer`: required `iss`, unset = not checked.
    public var jwtIssuer: String? = nil
    /// `--jwt-audience`: required member of `aud`, unset = not checked.
    public var jwtAudience: String? = nil
    /// `--jwt-require-exp`: refuse tokens without a numeric `exp` (default yes).
    public var jwtRequireExp = true
    /// `--jwt-leeway`: clock skew tolerated on exp/nbf/iat (default 30 s).
    public var jwtLeewayMs = 30_000
    /// `--rooms-claim`: claim with joinable room patterns (default `rooms`).
    public var roomsClaim = "rooms"
    /// `--publish-claim`: claim with publishable room patterns (default `publish`).
    public var publishClaim = "publish"
    /// `--auth-url`: the auth backend, `http://host[:port][/path]`; unset = no backend.
    public var authURL: String? = nil
    /// `--auth-retries`: retries after the first attempt (default 2).
    public var authRetries = 2
    /// `--auth-backoff-base`: ceiling of the first retry's jittered wait (default 100 ms).
    public var authBackoffBaseMs = 100
    /// `--auth-backoff-cap`: largest backoff ceiling (default 2 s).
    public var authBackoffCapMs = 2000
    /// `--auth-try-timeout`: one attempt, connect to last byte (default 2 s).
    public var authTryTimeoutMs = 2000
    /// `--auth-deadline`: all attempts of one call (default 5 s).
    public var authDeadlineMs = 5000
    /// `--auth-breaker-threshold`: consecutive failed attempts that open the breaker (default 5).
    public var authBreakerThreshold = 5
    /// `--auth-breaker-cooldown`: time open before a probe (default 5 s).
    public var authBreakerCooldownMs = 5000
    /// `--auth-cache-ttl`: how long a backend success is reused (default 10 s, 0 = off).
    public var authCacheTTLMs = 10_000
    /// `--auth-cache-size`: most cached tokens (default 10,000).
    public var authCacheSize = 10_000
    /// `--auth-max-inflight`: most distinct tokens being checked at once (default 1,024).
    public var authMaxInflight = 1024
    /// `--auth-timeout`: time after a token-less upgrade for the `auth` op (default 10 s, then close 4001).
    public var authTimeoutMs = 10_000
    /// `--token-grace`: time after `token_expired` for a fresh `auth` (default 30 s, then close 4003).
    public var tokenGraceMs = 30_000
    /// `--token-expiring-notice`: `token_expiring` is sent this long before `exp`, or halfway through the
    /// time left when the token is shorter (default 60 s; 0 = no notice).
    public var tokenExpiringNoticeMs = 60_000
    /// `--allowed-origins`: allowed browser origins (see ``OriginPolicy``); empty = any.
    public var allowedOrigins: [String] = []
    /// `--allow-no-origin`: whether handshakes without `Origin` (non-browser clients) are allowed (default yes).
    public var allowNoOrigin = true
    /// `--token-cookie`: cookie carrying the token; unset = cookies are not read.
    public var tokenCookie: String? = nil
    /// `--max-connections-per-ip`: concurrent connections per client IP on this node (0 = unlimited).
    public var maxConnectionsPerIP = 0
    /// `--max-handshakes-per-ip`: handshakes per second per client IP on this node (0 = unlimited).
    public var maxHandshakesPerIP = 0
    /// The keys loaded from `jwtSecret` and `jwtPublicKeys` by `Config.parse` (nil when none are configured).
    public var keys: JWTKeySet? = nil

    /// A default (open, dev-mode) configuration.
    public init() {}

    /// True when tokens are required (a JWT key or an auth backend is configured).
    public var requiresToken: Bool { jwtSecret != nil || !jwtPublicKeys.isEmpty || authURL != nil }

    /// Loads the key set from the secret and key files. Errors: unreadable or unsupported keys, short secret.
    public func loadKeys() throws(JWTKeyError) -> JWTKeySet? {
        guard jwtSecret != nil || !jwtPublicKeys.isEmpty else { return nil }
        var keys: [JWTPublicKey] = []
        for entry in jwtPublicKeys {
            var kid: String? = nil
            var path = entry
            if let eq = entry.firstIndex(of: "="), !entry[..<eq].contains("/") {
                kid = String(entry[..<eq])
                path = String(entry[entry.index(after: eq)...])
                guard !kid!.isEmpty else { throw JWTKeyError("--jwt-public-key: empty kid in '\(entry)'") }
            }
            keys.append(try JWTPublicKey(path: path, kid: kid))
        }
        return try JWTKeySet(secret: try jwtSecret.map(JWTKeySet.secretBytes), publicKeys: keys)
    }
}

extension Config {
    /// The auth flags, appended to the flag table (`--help` order).
    static let authOptions: [Option] = [
        Option(
            name: "jwt-secret", kind: .string, help: "HMAC secret for HS256/384/512 tokens, at least 32 bytes ('base64:…' for binary); unset = no HS*",
            apply: { c, v in c.auth.jwtSecret = v.isEmpty ? nil : v }, current: { $0.auth.jwtSecret ?? "" }, secret: true),
        Option(
            name: "jwt-public-key", kind: .list, help: "PEM public key file for RS*/ES* tokens, 'path' or 'kid=path'; repeatable (key rotation)",
            apply: { c, v in c.auth.jwtPublicKeys += v.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty } },
            current: { $0.auth.jwtPublicKeys.joined(separator: ",") }, reset: { $0.auth.jwtPublicKeys = [] }),
        Option(
            name: "jwt-issuer", kind: .string, help: "required 'iss' claim (unset = not checked)",
            apply: { c, v in c.auth.jwtIssuer = v.isEmpty ? nil : v }, current: { $0.auth.jwtIssuer ?? "" }),
        Option(
            name: "jwt-audience", kind: .string, help: "required member of the 'aud' claim (unset = not checked)",
            apply: { c, v in c.auth.jwtAudience = v.isEmpty ? nil : v }, current: { $0.auth.jwtAudience ?? "" }),
        Option(
            name: "jwt-require-exp", kind: .flag, help: "yes/no: refuse tokens without a numeric exp claim (a token that never expires outlives revocation)",
            apply: { c, v throws(Invalid) in c.auth.jwtRequireExp = try yesNo(v, "jwt-require-exp") }, current: { $0.auth.jwtRequireExp ? "yes" : "no" }),
        Option(
            name: "jwt-leeway", kind: .duration, help: "clock skew tolerated on exp, nbf and iat",
            apply: { c, v throws(Invalid) in c.auth.jwtLeewayMs = try duration(v, "jwt-leeway", in: 0...3_600_000) }, current: { "\($0.auth.jwtLeewayMs)ms" }),
        Option(
            name: "rooms-claim", kind: .string, help: "claim listing the room patterns a token may join ('*' = one segment, '{sub}' = the user)",
            apply: { c, v throws(Invalid) in c.auth.roomsClaim = try claimName(v, "rooms-claim") }, current: { $0.auth.roomsClaim }),
        Option(
            name: "publish-claim", kind: .string, help: "claim listing the room patterns a token may publish to",
            apply: { c, v throws(Invalid) in c.auth.publishClaim = try claimName(v, "publish-claim") }, current: { $0.auth.publishClaim }),
        Option(
            name: "auth-url", kind: .string, help: "auth backend, http://host[:port][/path], POSTed each new token (unset = JWT only)",
            apply: { c, v in c.auth.authURL = v.isEmpty ? nil : v }, current: { $0.auth.authURL ?? "" }),
        Option(
            name: "auth-retries", kind: .int, help: "auth backend retries after the first attempt (5xx, timeout, refused)",
            apply: { c, v throws(Invalid) in c.auth.authRetries = try int(v, "auth-retries", 0...10) }, current: { "\($0.auth.authRetries)" }),
        Option(
            name: "auth-backoff-base", kind: .duration, help: "ceiling of the first retry's full-jitter wait (doubles per retry)",
            apply: { c, v throws(Invalid) in c.auth.authBackoffBaseMs = try duration(v, "auth-backoff-base", in: 0...60_000) },
            current: { "\($0.auth.authBackoffBaseMs)ms" }),
        Option(
            name: "auth-backoff-cap", kind: .duration, help: "largest backoff ceiling",
            apply: { c, v throws(Invalid) in c.auth.authBackoffCapMs = try duration(v, "auth-backoff-cap", in: 0...600_000) },
            current: { "\($0.auth.authBackoffCapMs)ms" }),
        Option(
            name: "auth-try-timeout", kind: .duration, help: "one auth backend attempt, connect to last byte",
            apply: { c, v throws(Invalid) in c.auth.authTryTimeoutMs = try duration(v, "auth-try-timeout", in: 1...600_000) },
            current: { "\($0.auth.authTryTimeoutMs)ms" }),
        Option(
            name: "auth-deadline", kind: .duration, help: "all attempts of one auth backend call",
            apply: { c, v throws(Invalid) in c.auth.authDeadlineMs = try duration(v, "auth-deadline", in: 1...600_000) },
            current: { "\($0.auth.authDeadlineMs)ms" }),
        Option(
            name: "auth-breaker-threshold", kind: .int, help: "consecutive failed backend attempts that open the circuit breaker",
            apply: { c, v throws(Invalid) in c.auth.authBreakerThreshold = try int(v, "auth-breaker-threshold", 1...1_000_000) },
            current: { "\($0.auth.authBreakerThreshold)" }),
        Option(
            name: "auth-breaker-cooldown", kind: .duration, help: "time the breaker stays open (auths fail fast with 503 / 1013) before a probe",
            apply: { c, v throws(Invalid) in c.auth.authBreakerCooldownMs = try duration(v, "auth-breaker-cooldown", in: 0...3_600_000) },
            current: { "\($0.auth.authBreakerCooldownMs)ms" }),
        Option(
            name: "auth-cache-ttl", kind: .duration, help: "how long a backend success is reused for the same token (0 = no cache)",
            apply: { c, v throws(Invalid) in c.auth.authCacheTTLMs = try duration(v, "auth-cache-ttl", in: 0...3_600_000) },
            current: { "\($0.auth.authCacheTTLMs)ms" }),
        Option(
            name: "auth-cache-size", kind: .int, help: "most tokens in the auth backend cache",
            apply: { c, v throws(Invalid) in c.auth.authCacheSize = try int(v, "auth-cache-size", 1...10_000_000) }, current: { "\($0.auth.authCacheSize)" }),
        Option(
            name: "auth-max-inflight", kind: .int, help: "most distinct tokens checked with the backend at once (beyond: 503 / 1013)",
            apply: { c, v throws(Invalid) in c.auth.authMaxInflight = try int(v, "auth-max-inflight", 1...1_000_000) },
            current: { "\($0.auth.authMaxInflight)" }),
        Option(
            name: "auth-timeout", kind: .duration, help: "time a token-less connection has to send {\"op\":\"auth\"} (then close 4001)",
            apply: { c, v throws(Invalid) in c.auth.authTimeoutMs = try duration(v, "auth-timeout", in: 1...3_600_000) },
            current: { "\($0.auth.authTimeoutMs)ms" }),
        Option(
            name: "token-expiring-notice", kind: .duration, help: "token_expiring is sent this long before exp (or halfway through a shorter token; 0 = off)",
            apply: { c, v throws(Invalid) in c.auth.tokenExpiringNoticeMs = try duration(v, "token-expiring-notice", in: 0...86_400_000) },
            current: { "\($0.auth.tokenExpiringNoticeMs)ms" }),
        Option(
            name: "token-grace", kind: .duration, help: "time after token_expired to send a fresh auth (then close 4003)",
            apply: { c, v throws(Invalid) in c.auth.tokenGraceMs = try duration(v, "token-grace", in: 0...3_600_000) }, current: { "\($0.auth.tokenGraceMs)ms" }
        ),
        Option(
            name: "allowed-origins", kind: .list,
            help: "comma list of browser origins allowed to connect (https://app.example.com, https://*.example.com); unset = any",
            apply: { c, v in c.auth.allowedOrigins = v.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty } },
            current: { $0.auth.allowedOrigins.joined(separator: ",") }),
        Option(
            name: "allow-no-origin", kind: .flag, help: "yes/no: allow handshakes without an Origin header (non-browser clients)",
            apply: { c, v throws(Invalid) in c.auth.allowNoOrigin = try yesNo(v, "allow-no-origin") }, current: { $0.auth.allowNoOrigin ? "yes" : "no" }),
        Option(
            name: "token-cookie", kind: .string, help: "cookie name carrying the token (unset = cookies are not read)",
            apply: { c, v in c.auth.tokenCookie = v.isEmpty ? nil : v }, current: { $0.auth.tokenCookie ?? "" }),
        Option(
            name: "max-connections-per-ip", kind: .int, help: "concurrent connections per client IP on this node, 429 above (0 = unlimited)",
            apply: { c, v throws(Invalid) in c.auth.maxConnectionsPerIP = try int(v, "max-connections-per-ip", 0...10_000_000) },
            current: { "\($0.auth.maxConnectionsPerIP)" }),
        Option(
            name: "max-handshakes-per-ip", kind: .int, help: "handshakes per second per client IP on this node, 429 above (0 = unlimited)",
            apply: { c, v throws(Invalid) in c.auth.maxHandshakesPerIP = try int(v, "max-handshakes-per-ip", 0...10_000_000) },
            current: { "\($0.auth.maxHandshakesPerIP)" })
    ]

    /// Checks the auth flags together and loads the keys (called at the end of `parse`). Errors: `Invalid`
    /// naming the flag (unreadable key file, short secret, bad origin entry, bad URL, cookie name).
    static func finalizeAuth(_ c: inout Config) throws(Invalid) {
        do {
            c.auth.keys = try c.auth.loadKeys()
        } catch {
            throw Invalid(description: error.description.hasPrefix("--") ? error.description : "--jwt-public-key: \(error.description)")
        }
        do {
            _ = try OriginPolicy(allowed: c.auth.allowedOrigins, allowMissing: c.auth.allowNoOrigin)
        } catch {
            throw Invalid(description: error.description)
        }
        if let url = c.auth.authURL {
            do { _ = try AuthEndpoint(url: url) } catch { throw Invalid(description: error.description) }
        }
        if let name = c.auth.tokenCookie, name.contains(where: { "=; ,\t\"".contains($0) }) {
            throw Invalid(description: "--token-cookie: '\(name)' is not a cookie name")
        }
        if c.auth.authBackoffCapMs < c.auth.authBackoffBaseMs {
            throw Invalid(description: "--auth-backoff-cap must be at least --auth-backoff-base")
        }
    }

    static func yesNo(_ v: String, _ flag: String) throws(Invalid) -> Bool {
        switch v.lowercased() {
        case "yes", "true", "1", "on": return true
        case "no", "false", "0", "off": return false
        default: throw Invalid(description: "--\(flag): expected yes or no, got '\(v)'")
        }
    }

    private static func claimName(_ v: String, _ flag: String) throws(Invalid) -> String {
        guard !v.isEmpty, v.utf8.count <= 128 else { throw Invalid(description: "--\(flag): expected a claim name, got '\(v)'") }
        return v
    }
}
