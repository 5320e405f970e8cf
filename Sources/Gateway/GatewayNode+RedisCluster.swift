import ClusterBus
import Foundation
import Runtime

extension GatewayNode {
    /// `,"redis_cluster":{…}` (slot map, uncovered slots, last error) when the rooms run on Redis Cluster, else "".
    var clusterReadinessDetail: String {
        guard let bus = services.rooms as? RedisClusterBus else { return "" }
        let (name, json) = bus.clusterReadinessDetail
        return ",\(jsonString(name)):\(json)"
    }

    /// `local`, `redis` or `redis-cluster`: the bus the flags select (logs, `/ready`).
    static func busKind(_ config: Config) -> String {
        if !config.redisClusterSeeds.isEmpty { return "redis-cluster" }
        return config.redisURL == nil ? "local" : "redis"
    }

    /// With `--redis-cluster`: `RedisClusterBus` on its own "bus" loop for every role (docs/redis.md,
    /// "Redis Cluster"). nil without seeds.
    static func makeClusterBus(config: Config, logger: Logger) -> ClusterServices? {
        let seeds = config.redisClusterSeeds.compactMap(Config.parseSeed)
        guard !seeds.isEmpty else { return nil }
        let loop: EventLoop
        do {
            loop = try EventLoop(index: config.threads)
        } catch {
            logger.error("cannot set up the Redis cluster bus", ["error": .string("\(error)")])
            exit(2)
        }
        loop.start(name: "bus")
        let bus = RedisClusterBus(
            loop: loop, seeds: seeds, username: config.redisClusterUsername, password: config.redisClusterPassword,
            prefix: config.prefix, nodeID: config.nodeID, historySize: config.historySize,
            historyTTLMilliseconds: config.historyTTLMs, idempotencyWindowMilliseconds: config.idempotencyWindowMs,
            heartbeatIntervalMilliseconds: config.heartbeatIntervalMs, nodeTTLMilliseconds: config.nodeTTLMs,
            logger: busLogger(logger))
        if config.redisClusterTLS { bus.useTLS(config.redisTLS) }
        return .redisCluster(bus)
    }
}
