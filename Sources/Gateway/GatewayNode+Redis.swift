import ClusterBus
import Foundation
import Runtime

/// Wiring of the Redis cluster bus into a node: the dedicated "bus" event loop, the node info the registry
/// advertises, the readiness detail and the `switchboard_bus_*` / `switchboard_redis_*` metrics.
extension GatewayNode {
    /// The bus a node uses when none is injected: `RedisBus` on its own "bus" loop thread when
    /// `--redis-url` is set, else the in-process `LocalBus`. The URL was validated by `Config.parse`.
    static func makeDefaultBus(config: Config, logger: Logger) -> Bus {
        guard let url = config.redisURL else { return LocalBus(historySize: config.historySize, historyTTLMilliseconds: config.historyTTLMs) }
        let endpoint: RedisEndpoint
        let loop: EventLoop
        do {
            endpoint = try RedisEndpoint(url: url)
            loop = try EventLoop(index: config.threads)
        } catch {
            logger.error("cannot set up the Redis bus", ["error": .string("\(error)")])
            exit(2)
        }
        loop.start(name: "bus")
        let configuration = RedisBusConfiguration(
            endpoint: endpoint, prefix: config.prefix, nodeID: config.nodeID, historySize: config.historySize,
            historyTTLMilliseconds: config.historyTTLMs,
            backoff: RedisBackoff(baseMilliseconds: config.redisBackoffBaseMs, capMilliseconds: config.redisBackoffCapMs),
            heartbeatIntervalMilliseconds: config.heartbeatIntervalMs, nodeTTLMilliseconds: config.nodeTTLMs,
            attemptLogEvery: config.redisAttemptLog)
        return RedisBus(loop: loop, configuration: configuration) { level, message, fields in
            let mapped: LogLevel = switch level {
            case .debug: .debug
            case .info: .info
            case .warn: .warn
            case .error: .error
            }
            logger.log(mapped, message, pairs: fields.map { k, v in
                switch v {
                case .string(let s): (k, .string(s))
                case .int(let i): (k, .int(i))
                }
            })
        }
    }

    /// Gives a `RedisBus` what the registry key advertises; called once the listeners are bound.
    /// Cheap and non-blocking (read on the bus loop every heartbeat): per-loop gauges, no cross-loop task.
    func configureRedisBus(publicPort: Int) {
        guard let redis = bus as? RedisBus else { return }
        let address = "\(config.host):\(publicPort)"
        let started = UInt64(Date().timeIntervalSince1970 * 1000)
        redis.setNodeInfoProvider { [unowned self] in
            RedisNodeInfo(address: address, startedAtMilliseconds: started,
                          connections: loops.reduce(0) { $0 + $1.metrics.connectionsOpen.load() }, draining: isDraining)
        }
    }

    /// `,"redis":{…}` for the readiness JSON's bus dependency (connections and canary), or "".
    var redisReadinessDetail: String {
        guard let redis = bus as? RedisBus else { return "" }
        return ",\"redis\":" + redis.health.json
    }

    /// Prometheus families of the Redis bus (empty with the in-process bus). Every value is a single-writer
    /// counter of the bus loop, read here: no shared atomic is touched per message.
    func redisMetricsText() -> String {
        guard let redis = bus as? RedisBus else { return "" }
        let m = redis.metrics
        var out = ""
        func family(_ name: String, _ type: String, _ help: String, _ samples: [(String, Int)]) {
            out += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n"
            for (labels, v) in samples { out += "\(name)\(labels) \(v)\n" }
        }
        func histogram(_ name: String, _ help: String, _ h: LatencyHistogram) {
            out += LatencyHistogram.exposition(name: name, help: help, [h])
        }
        family("switchboard_redis_reconnects_total", "counter", "Redis reconnect attempts after a lost or failed connection, by connection.",
               [("{conn=\"commands\"}", m.commandReconnects.load()), ("{conn=\"subscriber\"}", m.subscriberReconnects.load())])
        family("switchboard_redis_connection_up", "gauge", "1 while the Redis connection is ready, by connection.",
               [("{conn=\"commands\"}", m.commandsUp.load()), ("{conn=\"subscriber\"}", m.subscriberUp.load())])
        family("switchboard_bus_state", "gauge", "Cluster bus state: 1 up, 0 down (connecting, backing off or canary late).",
               [("", redis.state == .up ? 1 : 0)])
        family("switchboard_bus_publishes_total", "counter", "Publishes stored and published by Redis (publish script answered).",
               [("", m.publishes.load())])
        family("switchboard_bus_publish_failures_total", "counter", "Publishes that failed: bus down, connection lost or script error.",
               [("", m.publishFailures.load())])
        family("switchboard_bus_messages_received_total", "counter", "Room messages received from Redis (once per node).",
               [("", m.messagesReceived.load())])
        family("switchboard_bus_messages_delivered_total", "counter", "Room messages handed to the hub after de-duplication (live and back-fill).",
               [("", m.messagesDelivered.load())])
        family("switchboard_bus_backfilled_messages_total", "counter", "Messages delivered by back-fills after a resubscribe.",
               [("", m.backfilledMessages.load())])
        family("switchboard_bus_backfill_gaps_total", "counter", "Back-fills that found history trimmed past the last delivered offset.",
               [("", m.backfillGaps.load())])
        family("switchboard_bus_malformed_payloads_total", "counter", "Room channel payloads not in the publish script's shape (dropped).",
               [("", m.malformedPayloads.load())])
        family("switchboard_bus_canary_failures_total", "counter", "Canaries missing or late (each forced a Redis reconnect).",
               [("", m.canaryFailures.load())])
        family("switchboard_bus_subscribed_rooms", "gauge", "Room channels this node is subscribed to.", [("", m.subscribedRooms.load())])
        family("switchboard_bus_analytics_dropped_total", "counter", "Analytics events the bus could not take: Redis down or behind (in-flight cap), or an error reply.",
               [("", m.analyticsDropped.load())])
        family("switchboard_bus_dead_nodes_cleaned_total", "counter", "Dead nodes whose presence entries this node removed.",
               [("", m.deadNodesCleaned.load())])
        family("switchboard_bus_node_id_conflicts_total", "counter", "Heartbeats that found this node's registry key written by another live node: a duplicate --node-id.",
               [("", m.nodeIDConflicts.load())])
        histogram("switchboard_redis_publish_latency_seconds", "Bus thread view of a publish: the bus call to the publish script's answer (bus hop plus one Redis round trip).", m.publishLatency)
        histogram("switchboard_bus_delivery_latency_seconds", "Redis XADD time to hand-off to the hub on this node (ms resolution).", m.deliveryLatency)
        return out
    }
}
