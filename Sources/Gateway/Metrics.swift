import ClusterBus
import Synchronization

/// A counter written by exactly one event loop and read by the scraper (owner: relaxed load and store, no
/// lock, no shared read-modify-write); `/metrics` sums the loops. The same single-writer counter the bus uses.
public typealias LoopCounter = BusCounter

/// Close codes counted individually in `switchboard_connections_closed_total{code}`; others count as "other".
let countedCloseCodes: [UInt16] = [1000, 1001, 1002, 1003, 1005, 1006, 1007, 1008, 1009, 1011, 1012, 1013, 4001, 4002, 4003]

/// Per-loop counters and gauges (see `MetricsExporter` for names and help texts).
public final class LoopMetrics: Sendable {
    public let connectionsOpen = LoopCounter()
    public let connectionsAccepted = LoopCounter()
    public let handshakesCompleted = LoopCounter()
    public let messagesIn = LoopCounter()
    public let messagesOut = LoopCounter()
    public let bytesIn = LoopCounter()
    public let bytesOut = LoopCounter()
    public let roomJoins = LoopCounter()
    public let roomLeaves = LoopCounter()
    public let publishesClient = LoopCounter()
    public let publishErrors = LoopCounter()
    public let slowConsumerCloses = LoopCounter()
    public let reapedPingTimeout = LoopCounter()
    public let reapedHandshakeTimeout = LoopCounter()
    public let reapedCloseTimeout = LoopCounter()
    public let reapedIdleTimeout = LoopCounter()
    public let frameRateCloses = LoopCounter()
    public let shedFrames = LoopCounter()
    public let analyticsAccepted = LoopCounter()
    public let analyticsDroppedConnection = LoopCounter()
    public let analyticsDroppedUser = LoopCounter()
    public let analyticsNotices = LoopCounter()
    public let outboundQueueBytes = LoopCounter()
    public let protocolErrors = LoopCounter()
    /// Authentication, authorization, Origin and admission counters (Auth/AuthMetrics.swift).
    public let auth = AuthLoopMetrics()
    /// Client publish: from the `publish` frame to the bus's answer (offset assigned).
    public let busPublishLatency = LatencyHistogram(bounds: LatencyHistogram.loopBounds)
    /// From the bus accepting a publish (wall clock, possibly on another node) to fan-out on this loop.
    public let deliveryLatency = LatencyHistogram(bounds: LatencyHistogram.loopBounds)
    public let envelopeErrors = LoopCounter()
    /// Index i counts close code `countedCloseCodes[i]`; the last slot counts every other code.
    public let closedByCode: [LoopCounter] = (0...countedCloseCodes.count).map { _ in LoopCounter() }
    /// Rejections by HTTP status: 400, 401, 403, 404, 405, 426, 429, 431, 503, other.
    public let rejectedByStatus: [LoopCounter] = (0...LoopMetrics.rejectedStatuses.count).map { _ in LoopCounter() }
    static let rejectedStatuses = [400, 401, 403, 404, 405, 426, 429, 431, 503]

    public init() {}

    func countClose(_ code: UInt16?) {
        let c = code ?? 1005
        let i = countedCloseCodes.firstIndex(of: c) ?? countedCloseCodes.count
        closedByCode[i].add()
    }

    func countRejection(_ status: Int) {
        let i = LoopMetrics.rejectedStatuses.firstIndex(of: status) ?? LoopMetrics.rejectedStatuses.count
        rejectedByStatus[i].add()
    }
}
