import Synchronization

/// A counter with one writer (the bus loop, or one gateway event loop: `LoopCounter` is this type) and any
/// number of readers (the `/metrics` scrape): a relaxed load and store, no lock and no read-modify-write on
/// a shared cache line, so hot paths may count every message.
public final class BusCounter: Sendable {
    private let value = Atomic<Int>(0)
    public init() {}
    /// Owning thread only.
    @inline(__always)
    public func add(_ n: Int = 1) { value.store(value.load(ordering: .relaxed) &+ n, ordering: .relaxed) }
    /// Owning thread only.
    @inline(__always)
    public func set(_ n: Int) { value.store(n, ordering: .relaxed) }
    /// Any thread.
    public func load() -> Int { value.load(ordering: .relaxed) }
}

/// What the Redis bus counts; written by the bus loop only, read by `/metrics`
/// (`switchboard_bus_*`, `switchboard_redis_*`, see the gateway's MetricsExporter).
public final class RedisBusMetrics: Sendable {
    /// Analytics events lost on the way to the stream (bus down, error reply).
    public let analyticsDropped = BusCounter()
    /// Reconnect attempts of the commands connection (every attempt after the first).
    public let commandReconnects = BusCounter()
    /// Reconnect attempts of the subscriber connection.
    public let subscriberReconnects = BusCounter()
    /// 1 while the commands connection is ready.
    public let commandsUp = BusCounter()
    /// 1 while the subscriber connection is ready.
    public let subscriberUp = BusCounter()
    /// Bus publishes answered by Redis (success).
    public let publishes = BusCounter()
    /// Bus publishes that failed (down, connection lost, error reply).
    public let publishFailures = BusCounter()
    /// Room messages received from the subscription (before de-duplication), once per node.
    public let messagesReceived = BusCounter()
    /// Room messages handed to the hub (live and back-fill).
    public let messagesDelivered = BusCounter()
    /// Messages a back-fill delivered after a resubscribe (from history, plus live ones held meanwhile).
    public let backfilledMessages = BusCounter()
    /// Back-fills that found history trimmed past the node's cursor (a gap members could not be spared).
    public let backfillGaps = BusCounter()
    /// Payloads on a room channel that were not in the publish script's shape (dropped).
    public let malformedPayloads = BusCounter()
    /// Canaries that were missing or late (each forced a reconnect).
    public let canaryFailures = BusCounter()
    /// Rooms this node is subscribed to (confirmed).
    public let subscribedRooms = BusCounter()
    /// Dead nodes whose presence entries this node removed.
    public let deadNodesCleaned = BusCounter()
    /// Heartbeats that found the registry key rewritten by another process: a duplicate `--node-id`.
    public let nodeIDConflicts = BusCounter()
    /// `publish()` call to Redis's reply (seconds in export): the bus hop plus one Redis round trip.
    public let publishLatency = LatencyHistogram(bounds: LatencyHistogram.busBounds)
    /// Redis `XADD` time (the entry ID's ms) to hand-off to the hub on this node: cross-node delivery latency
    /// at ms resolution (wall clocks of Redis and the node; meaningful on one host or with synced clocks).
    public let deliveryLatency = LatencyHistogram(bounds: LatencyHistogram.busBounds)

    public init() {}
}
