import Protocol
import Runtime
import TLS

/// What the cluster bus counts and what `/ready` says about it (`switchboard_redis_cluster_*`, written by
/// `RedisClusterBus.writeClusterMetrics(to:)`).
///
/// Counters are written by the bus loop only (the router counts where the events happen: `dispatch` for
/// redirects, `finishRefresh` for refreshes, `reconcileSubscriptions` for resubscribes, `connection` and
/// `redisConnectionClosed` for per-node connects and failures) and read by the `/metrics` scrape. The per-node
/// table and the health snapshot change only on connection events and refreshes (not per message), so
/// they sit behind a lock.
public final class RedisClusterMetrics: Sendable {
    /// `MOVED` redirects followed (the slot lives elsewhere for good; the map is corrected and refreshed).
    public let movedRedirects = Counter()
    /// `ASK` redirects followed (one key of a migrating slot; `ASKING` + resend).
    public let askRedirects = Counter()
    /// `TRYAGAIN` answers retried (a multi-key command while its keys were split by a migration).
    public let tryAgains = Counter()
    /// Slot-map refreshes whose map covers every slot with a live primary.
    public let refreshesComplete = Counter()
    /// Slot-map refreshes whose map leaves slots without a live primary (`uncoveredSlots`).
    public let refreshesUncovered = Counter()
    /// Slot-map refreshes where no known primary and no seed answered `CLUSTER SHARDS` usably.
    public let refreshesFailed = Counter()
    /// Refresh requests that did not start a refresh of their own: merged into a running or rate-limited one.
    public let refreshesMerged = Counter()
    /// `SSUBSCRIBE`s sent again for a room channel that had been subscribed before (moved slot, lost shard).
    public let resubscribes = Counter()
    /// Heartbeats that found another live node writing this node's registry key (a duplicate `--node-id`).
    public let nodeIDConflicts = Counter()
    /// Analytics events not appended: bus down, too many in flight, or refused by Redis.
    public let analyticsDropped = Counter()
    /// Gauge: slots of the last map without a live primary (16384 before any map is loaded).
    public let uncoveredSlots = Counter()
    /// Gauge: shards of the last map with a live primary (0 after a refresh where no node answered).
    public let primaries = Counter()
    /// TLS handshakes of the cluster links (`rediss-cluster://`), by result.
    public let tls = TLSMetrics()

    /// Per cluster node (`host:port`): connections opened and connections lost or refused.
    public struct NodeCounts: Sendable, Equatable {
        /// Connections opened (command and subscriber); every one after a node's first two is a reconnect.
        public var connects = 0
        /// Connects that failed, handshakes refused (`AUTH`), connections lost (reset, EOF, TLS failure).
        public var failures = 0
    }

    /// At most this many nodes get their own label set; later ones are summed under `node="other"`.
    public static let maxNodeLabels = 64
    private let nodes = Lock<[String: NodeCounts]>([:])
    private let healthBox = Lock(RedisClusterHealth())

    public init() {
        uncoveredSlots.set(RedisClusterSlot.count)
    }

    /// Per-node counts, sorted by address (any thread).
    public var nodeCounts: [(node: String, counts: NodeCounts)] {
        nodes.withLock { $0.sorted { $0.key < $1.key }.map { ($0.key, $0.value) } }
    }

    func nodeConnected(_ address: String) { updateNode(address) { $0.connects += 1 } }

    func nodeFailed(_ address: String) { updateNode(address) { $0.failures += 1 } }

    private func updateNode(_ address: String, _ body: (inout NodeCounts) -> Void) {
        nodes.withLock { table in
            let key = table[address] != nil || table.count < Self.maxNodeLabels ? address : "other"
            body(&table[key, default: NodeCounts()])
        }
    }

    /// The health snapshot for `/ready` (any thread).
    public var health: RedisClusterHealth { healthBox.withLock { $0 } }

    func updateHealth(_ body: (inout RedisClusterHealth) -> Void) { healthBox.withLock { body(&$0) } }
}

/// The cluster bus's view of the cluster for `/ready`: whether a slot map is loaded, which slots no primary
/// serves, and the last problem seen (refresh failure, refused handshake, lost or refused connection).
public struct RedisClusterHealth: Sendable, Equatable {
    /// True once a `CLUSTER SHARDS` answer was loaded; false again after a refresh where no node answered.
    public var mapLoaded = false
    /// Shards of the map with a live primary.
    public var primaries = 0
    /// The answering node's `cluster_state` (CLUSTER INFO) was `ok`: with `fail` (and the default
    /// `cluster-require-full-coverage yes`) Redis refuses commands for every slot with `CLUSTERDOWN`.
    public var clusterStateOK = true
    /// Slots without a live primary, as inclusive ranges (empty: every slot served).
    public var uncovered: [ClosedRange<Int>] = []
    /// The last problem, one line naming the node (e.g. `127.0.0.1:7000: WRONGPASS invalid username-password pair…`).
    public var lastError: String?

    public init() {}

    /// Slots without a live primary.
    public var uncoveredCount: Int { mapLoaded ? uncovered.reduce(0) { $0 + $1.count } : RedisClusterSlot.count }

    /// `ok` (every slot served), `degraded` (some slots unserved: their rooms are refused, the rest work; only
    /// with `cluster-require-full-coverage no`) or `down` (no map, `cluster_state:fail`, or no slot served).
    public var slotMapState: String {
        if !mapLoaded || !clusterStateOK || uncoveredCount == RedisClusterSlot.count { return "down" }
        return uncovered.isEmpty ? "ok" : "degraded"
    }

    /// `0-5460,10923-16383`: at most `limit` ranges, then `…`.
    public func rangesText(limit: Int = 8) -> String {
        var s = uncovered.prefix(limit).map { $0.lowerBound == $0.upperBound ? "\($0.lowerBound)" : "\($0.lowerBound)-\($0.upperBound)" }
            .joined(separator: ",")
        if uncovered.count > limit { s += ",…" }
        return s
    }

    /// `{"slot_map":"degraded","cluster_state":"ok","primaries":2,"uncovered_slots":5461,"uncovered_ranges":"0-5460",
    /// "last_error":…}` (`last_error` only when set).
    public var json: String {
        var s = "{\"slot_map\":\"\(slotMapState)\",\"cluster_state\":\"\(clusterStateOK ? "ok" : "fail")\""
        s += ",\"primaries\":\(primaries),\"uncovered_slots\":\(uncoveredCount)"
        s += ",\"uncovered_ranges\":" + JSONFragment.string(mapLoaded ? rangesText() : "0-16383").description
        if let e = lastError { s += ",\"last_error\":" + JSONFragment.string(e).description }
        return s + "}"
    }
}
