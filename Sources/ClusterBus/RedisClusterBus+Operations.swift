import Foundation
import Protocol
import Runtime
import TLS

/// What the cluster bus tells operators: readiness, metrics, problem lines, and TLS on every node link.
///
/// Readiness policy (docs/redis.md "Redis Cluster"): `/ready` follows what Redis itself will serve. The bus
/// is down (503) when no node answers `CLUSTER SHARDS` usably (seeds unreachable, not in cluster mode,
/// wrong password, certificate refused), when the answering node says `cluster_state:fail` (with the
/// default `cluster-require-full-coverage yes` one uncovered slot makes Redis refuse every command), or
/// when no slot is served. Slots without a live primary while the cluster state is `ok`
/// (`cluster-require-full-coverage no`) make it `degraded`, not down: rooms on those slots are refused
/// with `unavailable` (the client retries; nothing is written, nothing silently lost) while every other
/// room works, and `/ready` (200) shows the count and ranges. Taking every gateway out of the load
/// balancer for one shard's outage would turn a partial outage into a total one: all gateways share the
/// cluster, so none would be better placed.
extension RedisClusterBus {
    /// `("redis_cluster", {"slot_map":"ok|degraded|down","primaries":…,"uncovered_slots":…,"uncovered_ranges":…,
    /// "last_error":…})` for `/ready`'s bus dependency (any thread).
    public var clusterReadinessDetail: (name: String, json: String) { ("redis_cluster", clusterMetrics.health.json) }

    /// Makes every cluster connection TLS (`rediss-cluster://`), including nodes found in `CLUSTER SHARDS`
    /// and redirects: their `tls-port` is used, and each certificate must cover `settings.serverName`, else the
    /// node's announced hostname, else the address it was reached by (a seed's host name or the announced IP).
    /// Call before `start`. A context that cannot be built (unreadable CA, key not matching) is logged and
    /// fails every connection (never plain TCP instead).
    public func useTLS(_ settings: RedisTLSSettings) {
        let tlsMetrics = self.tlsMetrics
        let factory: (String) -> (CInt) -> (any Transport)?
        do {
            let context = try settings.makeContext()
            factory = { name in
                { fd in
                    TLSTransport(
                        client: context, serverName: settings.serverName ?? name, verifyName: settings.verifyServerName, fd: fd, metrics: tlsMetrics)
                }
            }
        } catch {
            let reason = "TLS settings cannot be used: \(error.description)"
            log(.error, "redis cluster TLS settings cannot be used", [("error", .string(error.description))])
            clusterMetrics.updateHealth { $0.lastError = reason }
            factory = { _ in { _ in nil } }
        }
        nonisolated(unsafe) let make = factory
        onLoop { [self] in
            router.makeTransport = make
            router.preferTLSPort = true
        }
    }

    /// TLS handshake counters of the cluster links (one per bus; `switchboard_redis_cluster_tls_handshakes_total`).
    var tlsMetrics: TLSMetrics { clusterMetrics.tls }

    // MARK: - Slot map health (router callbacks, on the loop)

    /// A refresh loaded `map`: up while any slot is served; uncovered ranges logged once per change.
    func refreshed(_ map: RedisClusterMap) {
        let uncovered = map.uncoveredSlots
        let primaries = map.shards.filter { $0.primary != nil }.count
        let before = clusterMetrics.health.slotMapState
        let stateOK = router.clusterStateOK
        clusterMetrics.updateHealth {
            $0.mapLoaded = true
            $0.clusterStateOK = stateOK
            $0.uncovered = uncovered
            $0.primaries = primaries
        }
        let health = clusterMetrics.health
        if !stateOK, router.logThrottle.shouldLog("state", "fail", now: monotonicMilliseconds()) {
            log(
                .error, "redis cluster says cluster_state:fail: Redis refuses every command until its slots are covered again",
                [("uncovered_slots", .int(health.uncoveredCount)), ("ranges", .string(health.rangesText())), ("primaries", .int(primaries))])
        }
        if stateOK { router.logThrottle.clear("state") }
        if uncovered.isEmpty {
            router.logThrottle.clear("slots")
            router.logThrottle.clear("refresh")
            if before != "ok" { log(.info, "redis cluster serves every slot", [("primaries", .int(primaries))]) }
        } else if router.logThrottle.shouldLog("slots", health.rangesText(), now: monotonicMilliseconds()) {
            log(
                .warn, "redis cluster slots without a live primary: rooms on them are refused until served",
                [("uncovered_slots", .int(health.uncoveredCount)), ("ranges", .string(health.rangesText())), ("primaries", .int(primaries))])
        }
        setUp(health.slotMapState != "down")
    }

    /// No node answered `CLUSTER SHARDS` usably: down, with the reason (logged once per change).
    func refreshFailed(_ problem: String) {
        clusterMetrics.updateHealth {
            $0.mapLoaded = false
            $0.primaries = 0
            $0.lastError = problem
        }
        clusterMetrics.uncoveredSlots.set(RedisClusterSlot.count)
        clusterMetrics.primaries.set(0)
        if router.logThrottle.shouldLog("refresh", problem, now: monotonicMilliseconds()) {
            log(.error, "redis cluster slot map unavailable: the bus is down", [("problem", .string(problem))])
        }
        setUp(false)
    }

    /// Why a command for `room` is refused before it is sent: its slot has no live primary in the current map
    /// (a refresh is asked for, so a promoted replica is found within the rate limit). nil: send it.
    func refusal(room: String) -> BusError? {
        let slot = keys.slot(ofRoom: room)
        guard router.map?.primary(ofSlot: slot) == nil else { return nil }
        router.refresh()
        return .unavailable("the room's Redis cluster slot \(slot) has no live primary (uncovered or failing over); retry later")
    }

    // MARK: - Metrics

    /// The `switchboard_redis_cluster_*` families (docs/redis.md "Metrics"). Counters are single-writer
    /// (the bus loop), read here.
    public func writeClusterMetrics(to w: inout PrometheusWriter) {
        let m = clusterMetrics
        w.family(
            "switchboard_redis_cluster_redirects_total", .counter,
            "Cluster redirects followed, by kind (moved: slot map corrected and refreshed; ask: one key of a migrating slot; tryagain: keys split by a migration, retried).",
            [
                ("{kind=\"moved\"}", m.movedRedirects.load()), ("{kind=\"ask\"}", m.askRedirects.load()),
                ("{kind=\"tryagain\"}", m.tryAgains.load())
            ])
        w.family(
            "switchboard_redis_cluster_refreshes_total", .counter,
            "Slot-map refreshes (CLUSTER SHARDS) by result: complete, uncovered (slots without a live primary) or failed (no node answered).",
            [
                ("{result=\"complete\"}", m.refreshesComplete.load()), ("{result=\"uncovered\"}", m.refreshesUncovered.load()),
                ("{result=\"failed\"}", m.refreshesFailed.load())
            ])
        w.family(
            "switchboard_redis_cluster_refresh_requests_merged_total", .counter,
            "Refresh requests merged into a running or rate-limited refresh (at most one refresh per 100 ms).", [("", m.refreshesMerged.load())])
        w.family(
            "switchboard_redis_cluster_resubscribes_total", .counter, "SSUBSCRIBEs sent again for a room channel after a moved slot or a lost shard.",
            [("", m.resubscribes.load())])
        w.family(
            "switchboard_redis_cluster_uncovered_slots", .gauge, "Slots of the last slot map without a live primary (16384 with no map).",
            [("", m.uncoveredSlots.load())])
        w.family("switchboard_redis_cluster_primaries", .gauge, "Shards of the last slot map with a live primary.", [("", m.primaries.load())])
        let nodes = m.nodeCounts
        w.family(
            "switchboard_redis_cluster_node_connects_total", .counter,
            "Connections opened to a cluster node (command and subscriber; later ones are reconnects).",
            nodes.map { ("{node=\"\(Self.labelValue($0.node))\"}", $0.counts.connects) })
        w.family(
            "switchboard_redis_cluster_node_failures_total", .counter,
            "Connections to a cluster node refused, lost (reset, EOF, TLS verification) or closed after a refused AUTH.",
            nodes.map { ("{node=\"\(Self.labelValue($0.node))\"}", $0.counts.failures) })
        let tls = m.tls
        w.family(
            "switchboard_redis_cluster_tls_handshakes_total", .counter, "TLS handshakes of cluster links by result (rediss-cluster:// only).",
            [("{result=\"ok\"}", tls.completed.reduce(0) { $0 + $1.load() })]
                + TLSHandshakeResult.allCases.filter { $0 != .ok }.map { ("{result=\"\($0.rawValue)\"}", tls.failures($0).load()) })
        w.family(
            "switchboard_redis_cluster_messages_delivered_total", .counter, "Room messages handed to the hub (live and back-fill).", [("", delivered.load())])
        w.family(
            "switchboard_redis_cluster_backfilled_messages_total", .counter, "Messages delivered by back-fills after a resubscribe.", [("", backfilled.load())])
        RedisBus.writeRoleCounters(analyticsDropped: m.analyticsDropped.load(), nodeIDConflicts: m.nodeIDConflicts.load(), to: &w)
    }

    /// A Prometheus label value: backslash, quote and newline escaped.
    static func labelValue(_ s: String) -> String {
        s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"").replacingOccurrences(of: "\n", with: "\\n")
    }
}
