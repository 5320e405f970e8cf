import ClusterBus
import Runtime
import Synchronization

/// Close codes counted individually in `switchboard_connections_closed_total{code}`; others count as "other".
let countedCloseCodes: [UInt16] = [1000, 1001, 1002, 1003, 1005, 1006, 1007, 1008, 1009, 1011, 1012, 1013, 4001, 4002, 4003, 4004]

/// Per-loop counters and gauges (see `MetricsExporter` for names and help texts).
public final class LoopMetrics: Sendable {
    public let connectionsOpen = Counter()
    public let connectionsAccepted = Counter()
    public let handshakesCompleted = Counter()
    public let messagesIn = Counter()
    public let messagesOut = Counter()
    public let bytesIn = Counter()
    public let bytesOut = Counter()
    public let roomJoins = Counter()
    public let roomLeaves = Counter()
    public let publishesClient = Counter()
    public let publishErrors = Counter()
    public let slowConsumerCloses = Counter()
    public let reapedPingTimeout = Counter()
    public let reapedHandshakeTimeout = Counter()
    public let reapedCloseTimeout = Counter()
    public let reapedIdleTimeout = Counter()
    public let frameRateCloses = Counter()
    public let shedFrames = Counter()
    public let analyticsAccepted = Counter()
    public let analyticsDroppedConnection = Counter()
    public let analyticsDroppedUser = Counter()
    public let analyticsNotices = Counter()
    public let outboundQueueBytes = Counter()
    public let protocolErrors = Counter()
    /// permessage-deflate room streams alive, the zlib bytes they hold, their reset points (first messages and resets), and
    /// compressed room deliveries from a room stream vs compressed alone (GatewayLoop+DeflateStreams.swift).
    public let deflateRoomContexts = Counter()
    public let deflateRoomContextBytes = Counter()
    public let deflateContextResets = Counter()
    public let deflateSharedDeliveries = Counter()
    public let deflateAloneDeliveries = Counter()
    /// Authentication, authorization, Origin and admission counters (Auth/AuthMetrics.swift).
    public let auth = AuthLoopMetrics()
    /// Socket.IO sessions, closes, connects, recoveries (SocketIOMetrics.swift).
    public let socketIO = SocketIOLoopMetrics()
    /// Client publish: from the `publish` frame to the bus's answer (offset assigned).
    public let busPublishLatency = LatencyHistogram(bounds: LatencyHistogram.loopBounds)
    /// From the bus accepting a publish (wall clock, possibly on another node) to fan-out on this loop.
    public let deliveryLatency = LatencyHistogram(bounds: LatencyHistogram.loopBounds)
    public let envelopeErrors = Counter()
    /// Index i counts close code `countedCloseCodes[i]`; the last slot counts every other code.
    public let closedByCode: [Counter] = (0...countedCloseCodes.count).map { _ in Counter() }
    /// Rejections by HTTP status: 400, 401, 403, 404, 405, 426, 429, 431, 503, other.
    public let rejectedByStatus: [Counter] = (0...LoopMetrics.rejectedStatuses.count).map { _ in Counter() }
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
