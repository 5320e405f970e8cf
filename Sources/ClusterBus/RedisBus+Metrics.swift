import Runtime

/// What the Redis bus reports about itself (the `NodeRegistry` reporting half): the readiness detail and
/// the `switchboard_bus_*` / `switchboard_redis_*` Prometheus families.
extension RedisBus {
    /// `("redis", {"commands":…,"subscriber":…,"canary_…":…})`: connection and canary health for `/ready`.
    public var readinessDetail: (name: String, json: String)? { ("redis", health.json) }

    /// Every value is a single-writer counter of the bus loop, read here: no shared atomic is touched per message.
    public func writeMetrics(to w: inout PrometheusWriter) {
        let m = metrics
        w.family(
            "switchboard_redis_reconnects_total", .counter, "Redis reconnect attempts after a lost or failed connection, by connection.",
            [("{conn=\"commands\"}", m.commandReconnects.load()), ("{conn=\"subscriber\"}", m.subscriberReconnects.load())])
        w.family(
            "switchboard_redis_connection_up", .gauge, "1 while the Redis connection is ready, by connection.",
            [("{conn=\"commands\"}", m.commandsUp.load()), ("{conn=\"subscriber\"}", m.subscriberUp.load())])
        w.family(
            "switchboard_bus_state", .gauge, "Cluster bus state: 1 up, 0 down (connecting, backing off or canary late).",
            [("", state == .up ? 1 : 0)])
        w.family(
            "switchboard_bus_publishes_total", .counter, "Publishes stored and published by Redis (publish script answered).",
            [("", m.publishes.load())])
        w.family(
            "switchboard_bus_publish_failures_total", .counter, "Publishes refused: bus down, not queued or script error (nothing was written).",
            [("", m.publishFailures.load())])
        w.family(
            "switchboard_bus_publish_unknown_total", .counter, "Publishes handed to Redis whose answer was lost with the connection (outcome unknown).",
            [("", m.publishUnknown.load())])
        w.family(
            "switchboard_bus_publish_repeats_total", .counter,
            "Publishes whose idempotency key was already stored: answered the first offset, not stored again.",
            [("", m.publishRepeats.load())])
        w.family(
            "switchboard_bus_messages_received_total", .counter, "Room messages received from Redis (once per node).",
            [("", m.messagesReceived.load())])
        w.family(
            "switchboard_bus_messages_delivered_total", .counter, "Room messages handed to the hub after de-duplication (live and back-fill).",
            [("", m.messagesDelivered.load())])
        w.family(
            "switchboard_bus_backfilled_messages_total", .counter, "Messages delivered by back-fills after a resubscribe.",
            [("", m.backfilledMessages.load())])
        w.family(
            "switchboard_bus_backfill_gaps_total", .counter, "Back-fills that found history trimmed past the last delivered offset.",
            [("", m.backfillGaps.load())])
        w.family(
            "switchboard_bus_malformed_payloads_total", .counter, "Room channel payloads not in the publish script's shape (dropped).",
            [("", m.malformedPayloads.load())])
        w.family(
            "switchboard_bus_canary_failures_total", .counter, "Canaries missing or late (each forced a Redis reconnect).",
            [("", m.canaryFailures.load())])
        w.family("switchboard_bus_subscribed_rooms", .gauge, "Room channels this node is subscribed to.", [("", m.subscribedRooms.load())])
        Self.writeRoleCounters(analyticsDropped: m.analyticsDropped.load(), nodeIDConflicts: m.nodeIDConflicts.load(), to: &w)
        w.family(
            "switchboard_bus_dead_nodes_cleaned_total", .counter, "Dead nodes whose presence entries this node removed.",
            [("", m.deadNodesCleaned.load())])
        w.histogram(
            "switchboard_redis_publish_latency_seconds",
            "Bus thread view of a publish: the bus call to the publish script's answer (bus hop plus one Redis round trip).", [m.publishLatency])
        w.histogram("switchboard_bus_delivery_latency_seconds", "Redis XADD time to hand-off to the hub on this node (ms resolution).", [m.deliveryLatency])
    }

    /// The analytics and registry counters both Redis buses report under one name (one Redis and Redis
    /// Cluster), so one dashboard and one alert cover either.
    static func writeRoleCounters(analyticsDropped: Int, nodeIDConflicts: Int, to w: inout PrometheusWriter) {
        w.family(
            "switchboard_bus_analytics_dropped_total", .counter,
            "Analytics events the bus could not take: Redis down or behind (in-flight cap), or an error reply.", [("", analyticsDropped)])
        w.family(
            "switchboard_bus_node_id_conflicts_total", .counter,
            "Heartbeats that found this node's registry key written by another live node: a duplicate --node-id.", [("", nodeIDConflicts)])
    }
}
