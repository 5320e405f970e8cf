import Runtime
import Synchronization

/// What the Redis bus counts; written by the bus loop only, read by `/metrics`
/// (`switchboard_bus_*`, `switchboard_redis_*`, written by `RedisBus.writeMetrics(to:)`).
public final class RedisBusMetrics: Sendable {
    /// Analytics events lost on the way to the stream (bus down, error reply).
    public let analyticsDropped = Counter()
    /// Reconnect attempts of the commands connection (every attempt after the first).
    public let commandReconnects = Counter()
    /// Reconnect attempts of the subscriber connection.
    public let subscriberReconnects = Counter()
    /// 1 while the commands connection is ready.
    public let commandsUp = Counter()
    /// 1 while the subscriber connection is ready.
    public let subscriberUp = Counter()
    /// Bus publishes answered by Redis (success).
    public let publishes = Counter()
    /// Bus publishes refused (down, not queued, error reply): nothing was written.
    public let publishFailures = Counter()
    /// Bus publishes handed to Redis whose answer was lost with the connection (outcome unknown).
    public let publishUnknown = Counter()
    /// Publishes whose idempotency key was already stored: answered the first offset, not stored again.
    public let publishRepeats = Counter()
    /// Room messages received from the subscription (before de-duplication), once per node.
    public let messagesReceived = Counter()
    /// Room messages handed to the hub (live and back-fill).
    public let messagesDelivered = Counter()
    /// Messages a back-fill delivered after a resubscribe (from history, plus live ones held meanwhile).
    public let backfilledMessages = Counter()
    /// Back-fills that found history trimmed past the node's cursor (a gap members could not be spared).
    public let backfillGaps = Counter()
    /// Payloads on a room channel that were not in the publish script's shape (dropped).
    public let malformedPayloads = Counter()
    /// Canaries that were missing or late (each forced a reconnect).
    public let canaryFailures = Counter()
    /// Rooms this node is subscribed to (confirmed).
    public let subscribedRooms = Counter()
    /// Dead nodes whose presence entries this node removed.
    public let deadNodesCleaned = Counter()
    /// Heartbeats that found the registry key rewritten by another process: a duplicate `--node-id`.
    public let nodeIDConflicts = Counter()
    /// `publish()` call to Redis's reply (seconds in export): the bus hop plus one Redis round trip.
    public let publishLatency = LatencyHistogram(bounds: LatencyHistogram.busBounds)
    /// Redis `XADD` time (the entry ID's ms) to hand-off to the hub on this node: cross-node delivery latency
    /// at ms resolution (wall clocks of Redis and the node; meaningful on one host or with synced clocks).
    public let deliveryLatency = LatencyHistogram(bounds: LatencyHistogram.busBounds)

    public init() {}
}
