import Runtime

/// Per-loop auth counters (owner loop writes, `/metrics` sums the loops), held by ``LoopMetrics``.
public final class AuthLoopMetrics: Sendable {
    /// Authentication outcomes (handshake token or `auth` op), by result; see ``AuthLoopMetrics/Result``.
    public let results: [Counter] = Result.allCases.map { _ in Counter() }
    /// `join` (or `presence`) refused by the rooms claim.
    public let forbiddenJoins = Counter()
    /// `publish` refused by the publish claim.
    public let forbiddenPublishes = Counter()
    /// `token_expiring` notices sent ahead of a token's `exp`.
    public let expiringNotices = Counter()
    /// Handshakes answered 403 for their `Origin`.
    public let originRejected = Counter()
    /// Handshakes refused (429) because the IP had `--max-connections-per-ip` connections open.
    public let admissionConnections = Counter()
    /// Handshakes refused (429) because the IP passed `--max-handshakes-per-ip` per second.
    public let admissionRate = Counter()
    /// Handshakes refused (503) because the admission table was full.
    public let admissionCapacity = Counter()
    /// Backend answers served from the cache.
    public let cacheHits = Counter()
    /// Cache misses that led a backend call.
    public let cacheMisses = Counter()
    /// Connections that waited for a call already in flight for the same token.
    public let coalesced = Counter()
    /// Backend attempts answered 200 with a valid identity.
    public let backendOK = Counter()
    /// Backend attempts answered 401/403.
    public let backendRejected = Counter()
    /// Backend attempts that failed (5xx, 408, 429, timeout, refused, malformed or unexpected answer).
    public let backendErrors = Counter()
    /// Backend attempts that hit the per-try timeout (also counted in `backendErrors`).
    public let backendTimeouts = Counter()
    /// Retries scheduled after a failed attempt.
    public let backendRetries = Counter()
    /// Authentications failed fast without calling (breaker open, too many in flight).
    public let backendFastFails = Counter()

    /// The `result` label of `switchboard_auth_attempts_total`.
    public enum Result: Int, CaseIterable, Sendable {
        /// Authenticated (handshake token, `auth` op, or a refresh).
        case ok
        /// The token failed local JWT verification (401 / 4002).
        case invalid
        /// The backend answered 401/403 (401 / 4002).
        case rejected
        /// The backend could not decide (503 / 1013).
        case unavailable
        /// No `auth` op within the auth timeout (4001).
        case timeout
        /// The token expired and was not renewed within the grace period (4003).
        case expired

        var label: String { ["ok", "invalid", "rejected", "unavailable", "timeout", "expired"][rawValue] }
    }

    /// Zeroed counters.
    public init() {}

    /// Counts one outcome (owner loop only).
    func count(_ r: Result) { results[r.rawValue].add() }
}

extension GatewayNode {
    /// The auth families of the Prometheus exposition (written by `metricsText()`).
    func writeAuthMetrics(to w: inout PrometheusWriter) {
        func family(_ name: String, _ kind: PrometheusWriter.Kind, _ help: String, _ samples: [(String, Int)]) {
            w.family(name, kind, help, samples.map { (labels: $0.0, value: $0.1) })
        }
        func sum(_ f: (AuthLoopMetrics) -> Counter) -> Int { loops.reduce(0) { $0 + f($1.metrics.auth).load() } }
        family(
            "switchboard_auth_attempts_total", .counter,
            "Authentications by result (ok, invalid token, rejected by the backend, backend unavailable, auth timeout 4001, expiry 4003).",
            AuthLoopMetrics.Result.allCases.map { r in ("{result=\"\(r.label)\"}", sum { $0.results[r.rawValue] }) })
        family(
            "switchboard_auth_forbidden_total", .counter, "Ops refused by the token's claims (error forbidden), by op.",
            [("{op=\"join\"}", sum { $0.forbiddenJoins }), ("{op=\"publish\"}", sum { $0.forbiddenPublishes })])
        family(
            "switchboard_auth_token_expiring_notices_total", .counter, "token_expiring notices sent ahead of a token's exp.", [("", sum { $0.expiringNotices })]
        )
        family("switchboard_origin_rejected_total", .counter, "Handshakes answered 403 because their Origin is not allowed.", [("", sum { $0.originRejected })])
        family(
            "switchboard_admission_rejected_total", .counter, "Handshakes refused by per-IP admission, by reason.",
            [
                ("{reason=\"connections\"}", sum { $0.admissionConnections }), ("{reason=\"rate\"}", sum { $0.admissionRate }),
                ("{reason=\"capacity\"}", sum { $0.admissionCapacity })
            ])
        family(
            "switchboard_auth_cache_total", .counter, "Auth backend cache lookups: hit, miss (a call was made), coalesced (joined a call in flight).",
            [("{result=\"hit\"}", sum { $0.cacheHits }), ("{result=\"miss\"}", sum { $0.cacheMisses }), ("{result=\"coalesced\"}", sum { $0.coalesced })])
        family(
            "switchboard_auth_backend_requests_total", .counter, "Auth backend attempts by outcome (timeouts are also errors).",
            [
                ("{outcome=\"ok\"}", sum { $0.backendOK }), ("{outcome=\"rejected\"}", sum { $0.backendRejected }),
                ("{outcome=\"error\"}", sum { $0.backendErrors }), ("{outcome=\"timeout\"}", sum { $0.backendTimeouts })
            ])
        family("switchboard_auth_backend_retries_total", .counter, "Auth backend retries scheduled after a failed attempt.", [("", sum { $0.backendRetries })])
        family(
            "switchboard_auth_backend_fast_fails_total", .counter, "Authentications failed fast without a call (breaker open, too many in flight).",
            [("", sum { $0.backendFastFails })])
        if let backend = auth.backend {
            let (state, opens) = backend.breakerSnapshot
            family("switchboard_auth_breaker_state", .gauge, "Auth backend circuit breaker: 0 closed, 1 open, 2 half-open.", [("", state.rawValue)])
            family("switchboard_auth_breaker_opens_total", .counter, "Times the auth backend circuit breaker opened.", [("", opens)])
            family("switchboard_auth_backend_inflight", .gauge, "Distinct tokens being checked with the auth backend now.", [("", backend.inflightCount)])
        }
    }
}
