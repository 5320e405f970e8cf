import ClusterBus
import Protocol
import Runtime

/// Collects one loop's accepted analytics events and hands them to the bus in batches: when 100 are
/// waiting, or 50 ms after the first one, whichever comes first. Loop-confined.
final class AnalyticsBatcher {
    static let maxBatch = 100
    static let maxDelayMs = 50
    private unowned let gl: GatewayLoop
    private var pending: [AnalyticsEvent] = []
    private var timer: ClosureTimer?

    init(loop: GatewayLoop) { gl = loop }

    func add(_ event: AnalyticsEvent) {
        pending.append(event)
        if pending.count >= AnalyticsBatcher.maxBatch {
            flush()
        } else if timer == nil {
            timer = gl.loop.schedule(afterMilliseconds: AnalyticsBatcher.maxDelayMs) { [weak self] in
                self?.timer = nil
                self?.flush()
            }
        }
    }

    func flush() {
        timer?.cancel()
        timer = nil
        guard !pending.isEmpty else { return }
        let batch = pending
        pending = []
        gl.node.analytics.appendAnalytics(batch, maxLength: gl.config.analyticsStreamSize)
    }
}

extension Connection {
    /// `analytics {event, data, room?}`: a per-connection token bucket (`--analytics-rate`, `--analytics-burst`),
    /// then the user's bucket shared by every node through the bus; accepted events are batched into the
    /// analytics stream. Dropped events are counted by reason; the client hears at most one
    /// `error {code: "throttled", retry_after_ms}` per second, never one per dropped event.
    func handleAnalytics(event: String, data: JSONFragment?, room: String?, user: String) {
        let gl = loop
        let config = gl.config
        let now = gl.loop.now
        if analyticsBucket == nil {
            analyticsBucket = TokenBucket(ratePerSecond: config.analyticsRate, burst: config.analyticsBurst, now: now)
        }
        if let wait = analyticsBucket!.take(now: now) {
            gl.metrics.analyticsDroppedConnection.add()
            throttleNotice(retryAfterMs: wait)
            return
        }
        let node = config.nodeID
        gl.node.analytics.takeAnalyticsBudget(user: user, ratePerSecond: config.analyticsRate, burst: config.analyticsBurst) { wait in
            gl.onLoop {
                if let wait {
                    gl.metrics.analyticsDroppedUser.add()
                    self.throttleNotice(retryAfterMs: wait)
                    return
                }
                gl.metrics.analyticsAccepted.add()
                gl.analytics.add(
                    AnalyticsEvent(
                        user: user, node: node, room: room, event: event, data: data,
                        serverTimeMilliseconds: wallClockMilliseconds()))
            }
        }
    }

    /// At most one `throttled` notice per second per connection; a droppable frame (shed under pressure).
    private func throttleNotice(retryAfterMs: Int) {
        let now = loop.loop.now
        guard lastThrottleNoticeAt == 0 || now >= lastThrottleNoticeAt + 1000 else { return }
        lastThrottleNoticeAt = now
        loop.metrics.analyticsNotices.add()
        send(
            Envelope.error(.throttled, message: "analytics rate exceeded", extra: [("retry_after_ms", min(retryAfterMs, 60_000))]),
            class: .droppable)
    }
}
