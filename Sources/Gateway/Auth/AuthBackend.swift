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
/// Node-wide and thread-safe: the breaker, the ``AuthCache`` and the table of calls in flight sit under one
/// lock taken a few times per call (never per message). Calls for the same token are coalesced: while one
/// is in flight, later connections with that token wait for its answer instead of calling again. The HTTP
/// exchange itself runs on the event loop of the connection that started it (``HTTPExchange``), so no
/// thread ever blocks on the backend. In-flight calls are bounded (`--auth-max-inflight`); beyond it new
/// tokens get `unavailable` at once.
public final class AuthBackend: Sendable {
    /// Where to send requests.
    public let endpoint: AuthEndpoint
    /// Retries, backoff, per-try timeout and deadline.
    public let policy: RetryPolicy
    /// Most distinct tokens being checked at once.
    public let maxInflight: Int
    /// Bytes of response body accepted.
    static let maxResponseBytes = 64 * 1024

    struct Waiter: Sendable {
        let loop: GatewayLoop
        let completion: @Sendable (AuthOutcome) -> Void
    }

    struct State: Sendable {
        var breaker: CircuitBreaker
        var cache: AuthCache
        var inflight: [AuthCacheKey: [Waiter]] = [:]
    }

    private let state: Lock<State>

    /// A backend client; `endpoint` already parsed.
    public init(endpoint: AuthEndpoint, policy: RetryPolicy, breaker: CircuitBreaker, cache: AuthCache, maxInflight: Int) {
        self.endpoint = endpoint
        self.policy = policy
        self.maxInflight = max(1, maxInflight)
        state = Lock(State(breaker: breaker, cache: cache))
    }

    /// The breaker's state now (for the gauge), and how many times it opened.
    public var breakerSnapshot: (state: CircuitBreaker.State, opens: Int) {
        state.withLock { ($0.breaker.state, $0.breaker.opens) }
    }

    /// Distinct tokens being checked now.
    public var inflightCount: Int { state.withLock { $0.inflight.count } }

    /// Authenticates `token` for a connection on `loop` (call on that loop). Returns the outcome at once when
    /// it is known without waiting (cache hit, breaker open, too many calls in flight); otherwise returns nil
    /// and calls `completion` later, on `loop`.
    func authenticate(token: String, context: AuthRequestContext, on loop: GatewayLoop,
                      completion: @escaping @Sendable (AuthOutcome) -> Void) -> AuthOutcome? {
        let key = AuthCacheKey(token: token)
        let now = monotonicMilliseconds()
        enum Plan { case done(AuthOutcome), joined, lead }
        let plan: Plan = state.withLock { s in
            if let id = s.cache.get(key, now: now) { return .done(.admitted(id)) }
            if s.inflight[key] != nil {
                s.inflight[key]!.append(Waiter(loop: loop, completion: completion))
                return .joined
            }
            if let ms = s.breaker.rejection(now: now) {
                return .done(.unavailable(retryAfterSeconds: Self.seconds(ms), reason: "auth backend unavailable (circuit open)"))
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
            BackendCall(backend: self, loop: loop, key: key, request: request(token: token, context: context)).start()
            return nil
        }
    }

    /// The POST bytes for one token.
    func request(token: String, context: AuthRequestContext) -> [UInt8] {
        var headers: [String: String] = [:]
        for (k, v) in context.headers { headers[k] = v }
        let object: [String: Any] = ["token": token, "ip": context.clientIP, "headers": headers]
        let body = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])).map { [UInt8]($0) } ?? []
        var head = "POST \(endpoint.path) HTTP/1.1\r\nHost: \(endpoint.hostHeader)\r\nContent-Type: application/json\r\n"
        head += "Accept: application/json\r\nUser-Agent: switchboard/\(switchboardVersion)\r\nContent-Length: \(body.count)\r\nConnection: close\r\n\r\n"
        return Array(head.utf8) + body
    }

    // MARK: - Used by BackendCall (any loop)

    func acquire() -> CircuitBreaker.Permission {
        let now = monotonicMilliseconds()
        return state.withLock { $0.breaker.acquire(now: now) }
    }

    func record(success: Bool) {
        let now = monotonicMilliseconds()
        state.withLock { s in
            if success { s.breaker.recordSuccess(now: now) } else { s.breaker.recordFailure(now: now) }
        }
    }

    /// Retry-After for an outage: until the breaker may probe again, at least 1 s.
    func retryAfterSeconds() -> Int {
        let now = monotonicMilliseconds()
        return state.withLock { s in
            if let ms = s.breaker.rejection(now: now) { return Self.seconds(ms) }
            return 1
        }
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

    static func seconds(_ ms: Int) -> Int { max(1, (ms + 999) / 1000) }

    /// The identity in a 200 answer's JSON body; nil when the body is not the expected object.
    static func parseIdentity(_ body: [UInt8]) -> AuthIdentity? {
        guard let object = (try? JSONSerialization.jsonObject(with: Data(body))) as? [String: Any],
              let user = object["user"] as? String, !user.isEmpty, user.utf8.count <= 256
        else { return nil }
        do {
            return AuthIdentity(user: user, rooms: try JWTVerifier.patterns(object, "rooms"), publish: try JWTVerifier.patterns(object, "publish"),
                                expiresAt: try JWTVerifier.numericDate(object, "expires_at"))
        } catch {
            return nil
        }
    }
}

/// One backend call with its retries, on one loop. Loop-confined.
final class BackendCall {
    private let backend: AuthBackend
    private let loop: GatewayLoop
    private let key: AuthCacheKey
    private let request: [UInt8]
    private let startedAt: UInt64
    private var attempt = 0
    private var rng = SystemRandomNumberGenerator()

    init(backend: AuthBackend, loop: GatewayLoop, key: AuthCacheKey, request: [UInt8]) {
        self.backend = backend
        self.loop = loop
        self.key = key
        self.request = request
        self.startedAt = monotonicMilliseconds()
    }

    func start() { tryOnce(timeoutMs: backend.policy.firstTimeoutMs) }

    private func tryOnce(timeoutMs: Int) {
        attempt += 1
        if case .rejected(let ms) = backend.acquire() {
            loop.metrics.auth.backendFastFails.add()
            return backend.complete(key, .unavailable(retryAfterSeconds: AuthBackend.seconds(ms), reason: "auth backend unavailable (circuit open)"))
        }
        HTTPExchange.start(context: loop.backendSockets, address: backend.endpoint.address, request: request, timeoutMs: timeoutMs,
                           maxBodyBytes: AuthBackend.maxResponseBytes) { [self] result in handle(result) }
    }

    private func handle(_ result: Result<HTTPExchange.Response, HTTPExchange.Failure>) {
        let m = loop.metrics.auth
        var why: String
        var retryable = true
        switch result {
        case .success(let r):
            switch r.status {
            case 200:
                if let id = AuthBackend.parseIdentity(r.body) {
                    m.backendOK.add()
                    backend.record(success: true)
                    return backend.complete(key, .admitted(id))
                }
                why = "200 without a valid {user, rooms, publish, expires_at} body"
                retryable = false
            case 401, 403:
                m.backendRejected.add()
                backend.record(success: true)
                return backend.complete(key, .rejected(reason: "token refused by the auth backend"))
            case 408, 429, 500...599:
                why = "HTTP \(r.status)"
            default:
                why = "unexpected HTTP \(r.status)"
                retryable = false
            }
        case .failure(let f):
            why = "\(f)"
            if f == .timeout { m.backendTimeouts.add() }
        }
        m.backendErrors.add()
        backend.record(success: false)
        loop.node.logger.rateLimited(.warn, "auth backend attempt failed", ["attempt": .int(attempt), "error": .string(why),
                                                                              "url_host": .string(backend.endpoint.hostHeader)])
        let step = retryable ? backend.policy.afterFailure(attempt: attempt, startedAt: startedAt, now: monotonicMilliseconds(), using: &rng) : .giveUp
        switch step {
        case .retry(let afterMs, let timeoutMs):
            m.backendRetries.add()
            loop.loop.schedule(afterMilliseconds: afterMs) { [self] in tryOnce(timeoutMs: timeoutMs) }
        case .giveUp:
            backend.complete(key, .unavailable(retryAfterSeconds: backend.retryAfterSeconds(), reason: "auth backend unavailable (\(why))"))
        }
    }
}
