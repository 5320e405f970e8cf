import ClusterBus
import Foundation
import Glibc
import Runtime

/// The auth backend (`--auth-url`): for each new connection whose token is not cached, the gateway POSTs
///
///     {"token":"…","ip":"203.0.113.7","headers":{"origin":"https://app.example.com","user-agent":"…"}}
///
/// and expects `200 {"user":"u1","rooms":["lobby","user:{sub}"],"publish":["lobby"],"expires_at":1767225600}`
/// (`rooms`, `publish` and `expires_at` — Unix seconds — optional) to admit, `401`/`403` to reject (final,
/// never retried). 5xx, 408, 429, timeouts, refused or reset connections and malformed answers are
/// failures: retried per ``RetryPolicy`` and counted by the ``CircuitBreaker``. Any other status is a
/// failure that is not retried (a misconfigured URL does not get better by asking again).
///
/// Node-wide and thread-safe: the ``AuthCache`` and the table of calls in flight sit under one lock taken a
/// few times per call (never per message); retries, the breaker and the HTTP exchange are ``BackendClient``'s. Calls for the same token are coalesced: while one
/// is in flight, later connections with that token wait for its answer instead of calling again. The HTTP
/// exchange itself runs on the event loop of the connection that started it (``HTTPExchange``), so no
/// thread ever blocks on the backend. In-flight calls are bounded (`--auth-max-inflight`); beyond it new
/// tokens get `unavailable` at once.
public final class AuthBackend: Sendable {
    /// The HTTP client with its retries, breaker and in-flight cap (shared code with the proxy: BackendClient.swift).
    let client: BackendClient
    /// Where to send requests.
    public var endpoint: AuthEndpoint { client.endpoint }
    /// Retries, backoff, per-try timeout and deadline.
    public var policy: RetryPolicy { client.policy }
    /// Most distinct tokens being checked at once.
    public var maxInflight: Int { client.maxInflight }
    /// Bytes of response body accepted.
    static let maxResponseBytes = 64 * 1024

    struct Waiter: Sendable {
        let loop: GatewayLoop
        let completion: @Sendable (AuthOutcome) -> Void
    }

    struct State: Sendable {
        var cache: AuthCache
        var inflight: [AuthCacheKey: [Waiter]] = [:]
    }

    private let state: Lock<State>

    /// A backend client; `endpoint` already parsed.
    public init(endpoint: AuthEndpoint, policy: RetryPolicy, breaker: CircuitBreaker, cache: AuthCache, maxInflight: Int) {
        client = BackendClient(
            name: "auth backend", endpoint: endpoint, policy: policy, breaker: breaker, maxInflight: maxInflight,
            maxResponseBytes: AuthBackend.maxResponseBytes
        ) { loop in
            let m = loop.metrics.auth
            return BackendAttemptCounters(errors: m.backendErrors, timeouts: m.backendTimeouts, retries: m.backendRetries, fastFails: m.backendFastFails)
        }
        state = Lock(State(cache: cache))
    }

    /// The breaker's state now (for the gauge), and how many times it opened.
    public var breakerSnapshot: (state: CircuitBreaker.State, opens: Int) { client.breakerSnapshot }

    /// Distinct tokens being checked now.
    public var inflightCount: Int { state.withLock { $0.inflight.count } }

    /// Authenticates `token` for a connection on `loop` (call on that loop). Returns the outcome at once when
    /// it is known without waiting (cache hit, breaker open, too many calls in flight); otherwise returns nil
    /// and calls `completion` later, on `loop`.
    func authenticate(
        token: String, context: AuthRequestContext, on loop: GatewayLoop,
        completion: @escaping @Sendable (AuthOutcome) -> Void
    ) -> AuthOutcome? {
        let key = AuthCacheKey(token: token)
        let now = monotonicMilliseconds()
        enum Plan {
            case done(AuthOutcome)
            case joined, lead
        }
        let rejection = client.rejection()
        let plan: Plan = state.withLock { s in
            if let id = s.cache.get(key, now: now) { return .done(.admitted(id)) }
            if s.inflight[key] != nil {
                s.inflight[key]!.append(Waiter(loop: loop, completion: completion))
                return .joined
            }
            if let ms = rejection {
                return .done(.unavailable(retryAfterSeconds: BackendClient.seconds(ms), reason: "auth backend unavailable (circuit open)"))
            }
            guard s.inflight.count < maxInflight else {
                return .done(.unavailable(retryAfterSeconds: 1, reason: "too many authentications in flight"))
            }
            s.inflight[key] = [Waiter(loop: loop, completion: completion)]
            return .lead
        }
        switch plan {
        case .done(let outcome):
            if case .admitted = outcome { loop.metrics.auth.cacheHits.add() }
            if case .unavailable = outcome { loop.metrics.auth.backendFastFails.add() }
            return outcome
        case .joined:
            loop.metrics.auth.coalesced.add()
            return nil
        case .lead:
            loop.metrics.auth.cacheMisses.add()
            let m = loop.metrics.auth
            client.call(
                on: loop, request: request(token: token, context: context),
                classify: { r -> BackendVerdict<AuthOutcome> in
                    switch r.status {
                    case 200:
                        guard let id = AuthBackend.parseIdentity(r.body) else {
                            return .failed("200 without a valid {user, rooms, publish, expires_at} body", retryable: false)
                        }
                        m.backendOK.add()
                        return .done(.admitted(id))
                    case 401, 403:
                        m.backendRejected.add()
                        return .done(.rejected(reason: "token refused by the auth backend"))
                    case 408, 429, 500...599:
                        return .failed("HTTP \(r.status)", retryable: true)
                    default:
                        return .failed("unexpected HTTP \(r.status)", retryable: false)
                    }
                },
                completion: { [self] result in
                    switch result {
                    case .success(let outcome):
                        complete(key, outcome)
                    case .failure(.breakerOpen(let seconds)):
                        complete(key, .unavailable(retryAfterSeconds: seconds, reason: "auth backend unavailable (circuit open)"))
                    case .failure(.overloaded):
                        complete(key, .unavailable(retryAfterSeconds: 1, reason: "too many authentications in flight"))
                    case .failure(.exhausted(let why, _, let seconds)):
                        complete(key, .unavailable(retryAfterSeconds: seconds, reason: "auth backend unavailable (\(why))"))
                    }
                })
            return nil
        }
    }

    /// The POST bytes for one token.
    func request(token: String, context: AuthRequestContext) -> [UInt8] {
        var headers: [String: String] = [:]
        for (k, v) in context.headers { headers[k] = v }
        let object: [String: Any] = ["token": token, "ip": context.clientIP, "headers": headers]
        let body = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])).map { [UInt8]($0) } ?? []
        return client.postRequest(body)
    }

    /// Ends the call for `key`: caches a success, then hands the outcome to every waiter on its own loop
    /// (through the loop's task queue).
    func complete(_ key: AuthCacheKey, _ outcome: AuthOutcome) {
        let now = monotonicMilliseconds()
        let wall = wallClockMilliseconds()
        let waiters: [Waiter] = state.withLock { s in
            if case .admitted(let id) = outcome { s.cache.put(key, id, now: now, wallNowMs: wall) }
            return s.inflight.removeValue(forKey: key) ?? []
        }
        for w in waiters {
            // Always queued, never inline: a completion must not run inside the `authenticate` call that led
            // the call (the caller has not stored its pending state yet).
            let c = w.completion
            w.loop.loop.execute { c(outcome) }
        }
    }

    static func seconds(_ ms: Int) -> Int { BackendClient.seconds(ms) }

    /// The identity in a 200 answer's JSON body; nil when the body is not the expected object.
    static func parseIdentity(_ body: [UInt8]) -> AuthIdentity? {
        guard let object = (try? JSONSerialization.jsonObject(with: Data(body))) as? [String: Any],
            let user = object["user"] as? String, !user.isEmpty, user.utf8.count <= 256
        else { return nil }
        do {
            return AuthIdentity(
                user: user, rooms: try JWTVerifier.patterns(object, "rooms"), publish: try JWTVerifier.patterns(object, "publish"),
                expiresAt: try JWTVerifier.numericDate(object, "expires_at"))
        } catch {
            return nil
        }
    }
}
