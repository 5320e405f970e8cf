import ClusterBus
import Foundation
import Runtime

/// Wiring of the cluster bus into a node: the dedicated "bus" event loop for Redis and the node info the
/// registry advertises. The roles' own readiness detail and metrics come through `NodeRegistry`.
extension GatewayNode {
    /// The bus roles a node uses when none are injected: `RedisBus` on its own "bus" loop thread when
    /// `--redis-url` is set, else the in-process bus. The URL was validated by `Config.parse`.
    static func makeDefaultBus(config: Config, logger: Logger) -> ClusterServices {
        if let cluster = makeClusterBus(config: config, logger: logger) { return cluster }
        guard let url = config.redisURL else {
            return .local(
                historySize: config.historySize, historyTTLMilliseconds: config.historyTTLMs,
                idempotencyWindowMilliseconds: config.idempotencyWindowMs, historyBytes: config.historyBytes,
                maxHistoryMemory: config.maxHistoryMemory, analyticsBytes: config.analyticsBytes)
        }
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
        var configuration = RedisBusConfiguration(
            endpoint: endpoint, prefix: config.prefix, nodeID: config.nodeID, historySize: config.historySize,
            historyTTLMilliseconds: config.historyTTLMs,
            backoff: RedisBackoff(baseMilliseconds: config.redisBackoffBaseMs, capMilliseconds: config.redisBackoffCapMs),
            heartbeatIntervalMilliseconds: config.heartbeatIntervalMs, nodeTTLMilliseconds: config.nodeTTLMs,
            attemptLogEvery: config.redisAttemptLog, idempotencyWindowMilliseconds: config.idempotencyWindowMs)
        configuration.tls = config.redisTLS
        return .redis(RedisBus(loop: loop, configuration: configuration, logger: busLogger(logger)))
    }

    /// The Redis buses' log lines (standalone and cluster) written by the node's logger.
    static func busLogger(_ logger: Logger) -> RedisBusLogger {
        { level, message, fields in
            let mapped: LogLevel =
                switch level {
                case .debug: .debug
                case .info: .info
                case .warn: .warn
                case .error: .error
                }
            logger.log(
                mapped, message,
                pairs: fields.map { k, v in
                    switch v {
                    case .string(let s): (k, .string(s))
                    case .int(let i): (k, .int(i))
                    }
                })
        }
    }

    /// Gives the registry what it advertises; called once the listeners are bound.
    /// Cheap and non-blocking (read on the bus loop every heartbeat): per-loop gauges, no cross-loop task.
    func configureRegistry(publicPort: Int) {
        let address = "\(config.host):\(publicPort)"
        let started = UInt64(Date().timeIntervalSince1970 * 1000)
        registry.setNodeInfoProvider { [unowned self] in
            NodeInfo(
                address: address, startedAtMilliseconds: started,
                connections: loops.reduce(0) { $0 + $1.metrics.connectionsOpen.load() }, draining: isDraining)
        }
    }

    /// `,"redis":{…}` for the readiness JSON's bus dependency (connections and canary), or "".
    var busReadinessDetail: String {
        guard let (name, json) = registry.readinessDetail else { return clusterReadinessDetail }
        return ",\(jsonString(name)):\(json)" + clusterReadinessDetail
    }
}
