import Foundation
import Protocol
import Runtime

/// What an `rpc` produced (the backend's result, or why there is none).
enum RPCOutcome: Sendable, Equatable {
    /// The backend's `result` (compact JSON; `null` when it gave none).
    case result(JSONFragment)
    /// No result: `code` is one of `backend_error` (the backend answered an error object; its `code`
    /// is in the message), `timeout`, `unavailable` (proxy off, breaker open, too many calls, refused or
    /// failing backend) or `bad_response` (a 2xx that is not the documented JSON).
    case failure(code: String, message: String)
}

/// What the backend decided about a proxied publish.
enum PublishDecision: Sendable, Equatable {
    /// Publish `data` (the client's, or the backend's rewrite).
    case allow(JSONFragment)
    /// Do not publish; the client gets `error refused` with this reason.
    case refuse(String)
    /// The backend could not decide (timeout, outage): not published (fail closed), `error unavailable`.
    case unavailable(String)
}

/// Per-loop proxy counters (owner loop writes, `/metrics` sums them).
final class ProxyLoopMetrics: Sendable {
    let rpcOK = Counter(), rpcFailed = Counter(), publishAllowed = Counter(), publishRefused = Counter(), publishFailed = Counter()
    let eventsSent = Counter(), eventsDropped = Counter()
    let errors = Counter(), timeouts = Counter(), retries = Counter(), fastFails = Counter()
}

/// The application backend (`--proxy-url`, docs/api.md "Backend proxy"): every call is a POST of one JSON
/// object with a `type` to the URL, through the auth backend's client code (``BackendClient``: retries with
/// backoff and jitter, circuit breaker, in-flight cap), on the event loop of the connection concerned.
///
/// - `rpc`: `{"type":"rpc","method","data","user","connection","node"}` → 200 `{"result":…}` or
///   `{"error":{"code","message"}}`;
/// - publish (rooms matching `--proxy-publish`): `{"type":"publish","room","data","user","connection","node"}`
///   → 200 `{"allow":true}`, `{"allow":true,"data":…}` (rewrite) or `{"allow":false,"reason":"…"}`;
/// - events (`--proxy-connect-events`): `{"type":"events","node","events":[{"event":"connect"|"disconnect",
///   "user","connection","ts"}]}`, batched per loop (every 500 ms or 100 events), fire-and-forget.
///
/// 5xx, 408, 429, timeouts and refused connections are retried; other statuses are final failures.
final class BackendProxy: Sendable {
    let client: BackendClient
    let publishPatterns: [RoomPattern]
    let connectEvents: Bool
    let nodeID: String
    /// Indexed by loop.
    let metrics: [ProxyLoopMetrics]
    /// Pending events per loop (loop-confined: each loop touches its own slot only).
    private let batches: [EventBatch]
    static let maxBatch = 100
    static let batchIntervalMs = 500

    init?(config: Config, loopCount: Int) {
        guard let url = config.api.proxyURL, let endpoint = try? AuthEndpoint(url: url, flag: "--proxy-url") else { return nil }
        endpoint.startResolving()
        let metrics = (0..<max(1, loopCount)).map { _ in ProxyLoopMetrics() }
        self.metrics = metrics
        let a = config.api
        client = BackendClient(
            name: "proxy backend", endpoint: endpoint,
            policy: RetryPolicy(
                retries: a.proxyRetries, baseMs: config.auth.authBackoffBaseMs, capMs: config.auth.authBackoffCapMs,
                tryTimeoutMs: a.proxyTryTimeoutMs, deadlineMs: a.proxyDeadlineMs),
            breaker: CircuitBreaker(threshold: config.auth.authBreakerThreshold, cooldownMs: config.auth.authBreakerCooldownMs),
            maxInflight: a.proxyMaxInflight, maxResponseBytes: 1 << 20
        ) { loop in
            let m = metrics[loop.loop.index]
            return BackendAttemptCounters(errors: m.errors, timeouts: m.timeouts, retries: m.retries, fastFails: m.fastFails)
        }
        publishPatterns = a.proxyPublish.map { RoomPattern($0) }
        connectEvents = a.proxyConnectEvents
        nodeID = config.nodeID
        batches = (0..<max(1, loopCount)).map { _ in EventBatch() }
    }

    /// True when publishes to `room` go through the backend first.
    func proxiesPublish(to room: String) -> Bool { publishPatterns.contains { $0.matches(room, user: "") } }

    /// The seam for every personality: forwards an `rpc` for a connection on `loop` (call on that loop);
    /// `completion` runs once, on `loop`, never inside this call. Never blocks the loop.
    /// - Parameters:
    ///   - user: the authenticated user (nil: anonymous, dev mode).
    ///   - connection: the connection's id as the client saw it (`hello`'s session), node-unique.
    func proxyRPC(
        user: String?, connection: String, method: String, data: JSONFragment?, on loop: GatewayLoop,
        completion: @escaping (RPCOutcome) -> Void
    ) {
        var body = "{\"type\":\"rpc\",\"method\":\(js(method)),\"data\":\(data?.description ?? "null"),"
        body += "\"user\":\(user.map(js) ?? "null"),\"connection\":\(js(connection)),\"node\":\(js(nodeID))}"
        let m = metrics[loop.loop.index]
        client.call(
            on: loop, request: client.postRequest(Array(body.utf8)),
            classify: { r -> BackendVerdict<RPCOutcome> in
                guard (200...299).contains(r.status) else { return BackendProxy.failedStatus(r.status) }
                guard let o = (try? JSONSerialization.jsonObject(with: Data(r.body))) as? [String: Any] else {
                    return .done(.failure(code: "bad_response", message: "the backend's answer is not a JSON object"))
                }
                if let e = o["error"] as? [String: Any] {
                    let code = e["code"].map { "\($0)" } ?? "error"
                    return .done(.failure(code: "backend_error", message: "\(code): \(e["message"] as? String ?? "")"))
                }
                return .done(.result(BackendProxy.fragment(o["result"])))
            },
            completion: { result in
                let outcome: RPCOutcome
                switch result {
                case .success(let o): outcome = o
                case .failure(let f): outcome = .failure(code: BackendProxy.code(f), message: "rpc '\(method)' failed: \(BackendProxy.describe(f))")
                }
                if case .result = outcome { m.rpcOK.add() } else { m.rpcFailed.add() }
                completion(outcome)
            })
    }

    /// Asks the backend about a publish to `room` (call on `loop`); `completion` once, on `loop`.
    func proxyPublish(
        user: String?, connection: String, room: String, data: JSONFragment, on loop: GatewayLoop,
        completion: @escaping (PublishDecision) -> Void
    ) {
        var body = "{\"type\":\"publish\",\"room\":\(js(room)),\"data\":\(data.description),"
        body += "\"user\":\(user.map(js) ?? "null"),\"connection\":\(js(connection)),\"node\":\(js(nodeID))}"
        let m = metrics[loop.loop.index]
        client.call(
            on: loop, request: client.postRequest(Array(body.utf8)),
            classify: { r -> BackendVerdict<PublishDecision> in
                guard (200...299).contains(r.status) else { return BackendProxy.failedStatus(r.status) }
                guard let o = (try? JSONSerialization.jsonObject(with: Data(r.body))) as? [String: Any], let allow = o["allow"] as? Bool else {
                    return .failed("answer without a boolean 'allow'", retryable: false)
                }
                guard allow else { return .done(.refuse(o["reason"] as? String ?? "refused by the backend")) }
                return .done(.allow(o["data"].map { BackendProxy.fragment($0) } ?? data))
            },
            completion: { result in
                let decision: PublishDecision
                switch result {
                case .success(let d): decision = d
                case .failure(let f): decision = .unavailable("publish proxy: \(BackendProxy.describe(f))")
                }
                switch decision {
                case .allow: m.publishAllowed.add()
                case .refuse: m.publishRefused.add()
                case .unavailable: m.publishFailed.add()
                }
                completion(decision)
            })
    }

    /// Queues a connect or disconnect event (call on `loop`); sent with the loop's next batch.
    func connectionEvent(_ event: String, user: String?, connection: String, on loop: GatewayLoop) {
        guard connectEvents else { return }
        let batch = batches[loop.loop.index]
        batch.events.append("{\"event\":\"\(event)\",\"user\":\(user.map(js) ?? "null"),\"connection\":\(js(connection)),\"ts\":\(wallClockMilliseconds())}")
        if batch.events.count >= BackendProxy.maxBatch {
            flush(loop)
        } else if !batch.scheduled {
            batch.scheduled = true
            loop.loop.schedule(afterMilliseconds: BackendProxy.batchIntervalMs) { [self] in flush(loop) }
        }
    }

    private func flush(_ loop: GatewayLoop) {
        let batch = batches[loop.loop.index]
        batch.scheduled = false
        guard !batch.events.isEmpty else { return }
        let events = batch.events
        batch.events = []
        let m = metrics[loop.loop.index]
        let body = "{\"type\":\"events\",\"node\":\(js(nodeID)),\"events\":[\(events.joined(separator: ","))]}"
        client.call(
            on: loop, request: client.postRequest(Array(body.utf8)),
            classify: { r -> BackendVerdict<Void> in
                (200...299).contains(r.status) ? .done(()) : BackendProxy.failedStatus(r.status)
            },
            completion: { result in
                if case .success = result { m.eventsSent.add(events.count) } else { m.eventsDropped.add(events.count) }
            })
    }

    /// Appends the `switchboard_proxy_*` families.
    func write(to w: inout PrometheusWriter) {
        func sum(_ f: (ProxyLoopMetrics) -> Counter) -> Double { Double(metrics.reduce(0) { $0 + f($1).load() }) }
        w.family(
            "switchboard_proxy_rpc_total", .counter, "rpc ops forwarded to the backend, by result.",
            [(labels: "{result=\"ok\"}", value: sum { $0.rpcOK }), (labels: "{result=\"failed\"}", value: sum { $0.rpcFailed })])
        w.family(
            "switchboard_proxy_publish_total", .counter, "Publishes checked with the backend, by decision.",
            [
                (labels: "{decision=\"allowed\"}", value: sum { $0.publishAllowed }), (labels: "{decision=\"refused\"}", value: sum { $0.publishRefused }),
                (labels: "{decision=\"failed\"}", value: sum { $0.publishFailed })
            ])
        w.family(
            "switchboard_proxy_events_total", .counter, "Connect/disconnect events, by outcome.",
            [(labels: "{outcome=\"sent\"}", value: sum { $0.eventsSent }), (labels: "{outcome=\"dropped\"}", value: sum { $0.eventsDropped })])
        w.family(
            "switchboard_proxy_backend_requests_total", .counter, "Failed proxy backend attempts (timeouts are also errors).",
            [(labels: "{outcome=\"error\"}", value: sum { $0.errors }), (labels: "{outcome=\"timeout\"}", value: sum { $0.timeouts })])
        w.family("switchboard_proxy_backend_retries_total", .counter, "Proxy backend retries.", [(labels: "", value: sum { $0.retries })])
        w.family(
            "switchboard_proxy_backend_fast_fails_total", .counter, "Proxied calls failed fast (breaker open, too many in flight).",
            [(labels: "", value: sum { $0.fastFails })])
        w.family(
            "switchboard_proxy_breaker_state", .gauge, "Proxy backend circuit breaker: 0 closed, 1 open, 2 half-open.",
            [(labels: "", value: Double(client.breakerSnapshot.state.rawValue))])
    }

    // MARK: - Helpers

    static func failedStatus<T>(_ status: Int) -> BackendVerdict<T> {
        switch status {
        case 408, 429, 500...599: .failed("HTTP \(status)", retryable: true)
        default: .failed("unexpected HTTP \(status)", retryable: false)
        }
    }

    static func code(_ f: BackendFailure) -> String {
        if case .exhausted(_, true, _) = f { return "timeout" }
        return "unavailable"
    }

    static func describe(_ f: BackendFailure) -> String {
        switch f {
        case .breakerOpen: "the backend is unavailable (circuit open)"
        case .overloaded: "too many backend calls in flight"
        case .exhausted(let why, true, _): "the backend did not answer in time (\(why))"
        case .exhausted(let why, false, _): "the backend failed (\(why))"
        }
    }

    /// A decoded JSON value as compact JSON (`null` for nil).
    static func fragment(_ value: Any?) -> JSONFragment {
        guard let value, !(value is NSNull),
            let d = try? JSONSerialization.data(withJSONObject: value, options: [.fragmentsAllowed, .withoutEscapingSlashes])
        else { return .null }
        return JSONFragment(bytes: [UInt8](d))
    }
}

/// One loop's pending connection events (that loop only).
private final class EventBatch: @unchecked Sendable {
    var events: [String] = []
    var scheduled = false
}

extension Envelope {
    /// `{"op":"rpc_result","id":…,"result":…}` or `{"op":"rpc_result","id":…,"error":{"code","message"}}`.
    static func rpcResult(id: JSONFragment?, _ outcome: RPCOutcome) -> [UInt8] {
        var s = "{\"op\":\"rpc_result\",\"id\":\(id?.description ?? "null"),"
        switch outcome {
        case .result(let r): s += "\"result\":\(r.description)}"
        case .failure(let code, let message): s += "\"error\":{\"code\":\(js(code)),\"message\":\(js(message))}}"
        }
        return Array(s.utf8)
    }
}

extension ErrorCode {
    /// A publish the backend refused (`--proxy-publish`); the message is the backend's reason.
    static let refused = ErrorCode(rawValue: "refused")
}
