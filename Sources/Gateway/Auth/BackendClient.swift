import Foundation
import Runtime

/// The counters one backend's attempts update on a loop (the auth backend's are in ``AuthLoopMetrics``,
/// the proxy's in ``ProxyLoopMetrics``).
struct BackendAttemptCounters {
    /// Failed attempts (5xx, 408, 429, timeout, refused, malformed or unexpected answer).
    let errors: Counter
    /// Attempts that hit the per-try timeout (also in `errors`).
    let timeouts: Counter
    /// Retries scheduled after a failed attempt.
    let retries: Counter
    /// Calls failed fast without a request (breaker open, too many in flight).
    let fastFails: Counter
}

/// What the caller makes of one HTTP answer.
enum BackendVerdict<Value> {
    /// The call is over with this value (success, or an answer that is final such as 401).
    case done(Value)
    /// The attempt failed; `retryable` failures are tried again within the policy and count against the breaker.
    case failed(String, retryable: Bool)
}

/// Why a backend call produced no value.
enum BackendFailure: Error, Equatable {
    /// The breaker is open: no request was made; it may probe again in `retryAfterSeconds`.
    case breakerOpen(retryAfterSeconds: Int)
    /// `maxInflight` calls were already in flight: no request was made.
    case overloaded
    /// Every attempt failed (the last one's reason); `timedOut` when it was a timeout.
    case exhausted(reason: String, timedOut: Bool, retryAfterSeconds: Int)
}

/// One HTTP backend as the gateway calls it: the auth backend (`--auth-url`) and the application backend
/// (`--proxy-url`) share this client: a POST over ``HTTPExchange`` on the caller's event loop (never a
/// blocked thread), retried per ``RetryPolicy`` (exponential backoff, full jitter, per-try timeout,
/// deadline), a ``CircuitBreaker`` over consecutive failed attempts, and a cap on calls in flight.
///
/// Thread-safe: the breaker and the in-flight count sit under one lock taken a few times per call.
final class BackendClient: Sendable {
    /// For logs: "auth backend", "proxy backend".
    let name: String
    let endpoint: AuthEndpoint
    let policy: RetryPolicy
    /// Most calls in flight at once; beyond it `call` fails fast with `.overloaded`.
    let maxInflight: Int
    /// Bytes of response body accepted.
    let maxResponseBytes: Int
    let counters: @Sendable (GatewayLoop) -> BackendAttemptCounters
    private let state: Lock<(breaker: CircuitBreaker, inflight: Int)>

    init(
        name: String, endpoint: AuthEndpoint, policy: RetryPolicy, breaker: CircuitBreaker, maxInflight: Int, maxResponseBytes: Int = 64 * 1024,
        counters: @escaping @Sendable (GatewayLoop) -> BackendAttemptCounters
    ) {
        self.name = name
        self.endpoint = endpoint
        self.policy = policy
        self.maxInflight = max(1, maxInflight)
        self.maxResponseBytes = maxResponseBytes
        self.counters = counters
        state = Lock((breaker, 0))
    }

    /// The breaker's state now (for the gauge), and how many times it opened.
    var breakerSnapshot: (state: CircuitBreaker.State, opens: Int) { state.withLock { ($0.breaker.state, $0.breaker.opens) } }

    /// Calls in flight now.
    var inflight: Int { state.withLock { $0.inflight } }

    /// Milliseconds until the open breaker may probe, or nil when calls may go.
    func rejection() -> Int? {
        let now = monotonicMilliseconds()
        return state.withLock { $0.breaker.rejection(now: now) }
    }

    /// A POST of `body` (JSON) to the endpoint's path, as request bytes.
    func postRequest(_ body: [UInt8], path: String? = nil) -> [UInt8] {
        var head = "POST \(path ?? endpoint.path) HTTP/1.1\r\nHost: \(endpoint.hostHeader)\r\nContent-Type: application/json\r\n"
        head += "Accept: application/json\r\nUser-Agent: switchboard/\(switchboardVersion)\r\nContent-Length: \(body.count)\r\nConnection: close\r\n\r\n"
        return Array(head.utf8) + body
    }

    /// Sends `request` from `loop` (call on that loop) with retries; `classify` judges each answer.
    /// `completion` runs once, on `loop`, never inside this call.
    func call<Value>(
        on loop: GatewayLoop, request: [UInt8], classify: @escaping (HTTPExchange.Response) -> BackendVerdict<Value>,
        completion: @escaping (Result<Value, BackendFailure>) -> Void
    ) {
        let reserved = state.withLock { s -> Bool in
            guard s.inflight < maxInflight else { return false }
            s.inflight += 1
            return true
        }
        guard reserved else {
            counters(loop).fastFails.add()
            loop.loop.schedule(afterMilliseconds: 0) { completion(.failure(.overloaded)) }
            return
        }
        BackendAttempts(client: self, loop: loop, request: request, classify: classify) { [self] result in
            state.withLock { $0.inflight -= 1 }
            completion(result)
        }.start()
    }

    // MARK: - Used by BackendAttempts (any loop)

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
    func retryAfterSeconds() -> Int { rejection().map(Self.seconds) ?? 1 }

    static func seconds(_ ms: Int) -> Int { max(1, (ms + 999) / 1000) }
}

/// One backend call with its retries, on one loop. Loop-confined.
final class BackendAttempts<Value> {
    private let client: BackendClient
    private let loop: GatewayLoop
    private let request: [UInt8]
    private let classify: (HTTPExchange.Response) -> BackendVerdict<Value>
    private let completion: (Result<Value, BackendFailure>) -> Void
    private let startedAt: UInt64
    private var attempt = 0
    private var rng = SystemRandomNumberGenerator()

    init(
        client: BackendClient, loop: GatewayLoop, request: [UInt8], classify: @escaping (HTTPExchange.Response) -> BackendVerdict<Value>,
        completion: @escaping (Result<Value, BackendFailure>) -> Void
    ) {
        self.client = client
        self.loop = loop
        self.request = request
        self.classify = classify
        self.completion = completion
        self.startedAt = monotonicMilliseconds()
    }

    func start() { tryOnce(timeoutMs: client.policy.firstTimeoutMs) }

    private func tryOnce(timeoutMs: Int) {
        attempt += 1
        if case .rejected(let ms) = client.acquire() {
            client.counters(loop).fastFails.add()
            // Never inline: `start` runs inside the caller, which may not have stored its pending state yet.
            let done = completion
            loop.loop.schedule(afterMilliseconds: 0) { done(.failure(.breakerOpen(retryAfterSeconds: BackendClient.seconds(ms)))) }
            return
        }
        HTTPExchange.start(
            context: loop.backendSockets, address: client.endpoint.address, request: request, timeoutMs: timeoutMs,
            maxBodyBytes: client.maxResponseBytes
        ) { [self] result in handle(result) }
    }

    private func handle(_ result: Result<HTTPExchange.Response, HTTPExchange.Failure>) {
        let m = client.counters(loop)
        var why: String
        var retryable = true
        var timedOut = false
        switch result {
        case .success(let r):
            switch classify(r) {
            case .done(let value):
                client.record(success: true)
                return completion(.success(value))
            case .failed(let reason, let canRetry):
                why = reason
                retryable = canRetry
            }
        case .failure(let f):
            why = "\(f)"
            if f == .timeout {
                m.timeouts.add()
                timedOut = true
            }
        }
        m.errors.add()
        client.record(success: false)
        loop.node.logger.rateLimited(
            .warn, "\(client.name) attempt failed",
            [
                "attempt": .int(attempt), "error": .string(why),
                "url_host": .string(client.endpoint.hostHeader)
            ])
        let step = retryable ? client.policy.afterFailure(attempt: attempt, startedAt: startedAt, now: monotonicMilliseconds(), using: &rng) : .giveUp
        switch step {
        case .retry(let afterMs, let timeoutMs):
            m.retries.add()
            loop.loop.schedule(afterMilliseconds: afterMs) { [self] in tryOnce(timeoutMs: timeoutMs) }
        case .giveUp:
            completion(.failure(.exhausted(reason: why, timedOut: timedOut, retryAfterSeconds: client.retryAfterSeconds())))
        }
    }
}
