import Protocol
import Runtime

/// Socket.IO recovery records and analytics over Redis Cluster: the standalone keys and commands
/// (`RedisSessionWire`, `RedisAnalyticsWire`), each key sent to the primary of its own slot (no hash tag:
/// records, per-user buckets and the one analytics stream spread as Redis hashes them). Best effort like
/// the standalone roles: while the slot map does not cover every slot, records are dropped, reads answer
/// nil / empty, and the analytics budget answers "not allowed" (1000 ms) rather than letting events through.
extension RedisClusterBus: SessionStore, AnalyticsBus {
    public func storeSession(key: String, value: [UInt8], ttlMilliseconds: Int) {
        onLoop { [self] in
            guard state == .up else { return }
            let redisKey = keys.session(key)
            router.send(RedisSessionWire.store(redisKey, value: value, ttlMilliseconds: ttlMilliseconds), slot: RedisClusterSlot.slot(of: redisKey)) { _ in }
        }
    }

    public func loadSession(key: String, completion: @escaping @Sendable ([UInt8]?) -> Void) {
        onLoop { [self] in
            guard state == .up else { return completion(nil) }
            let redisKey = keys.session(key)
            router.send(RedisSessionWire.load(redisKey), slot: RedisClusterSlot.slot(of: redisKey)) { completion(RedisSessionWire.value($0)) }
        }
    }

    // MARK: - Analytics

    /// `{prefix}analytics`, on its own slot.
    var analyticsStream: String { keys.prefix + "analytics" }

    public func takeAnalyticsBudget(user: String, ratePerSecond: Double, burst: Int, completion: @escaping @Sendable (Int?) -> Void) {
        onLoop { [self] in
            guard state == .up else { return completion(1000) }
            // Redis is behind: refuse rather than queue without bound (as `RedisBus.maxAnalyticsInFlight`).
            guard analyticsInFlight < RedisBus.maxAnalyticsInFlight else { return completion(100) }
            analyticsInFlight += 1
            let args = RedisAnalyticsWire.bucketArguments(prefix: keys.prefix, user: user, ratePerSecond: ratePerSecond, burst: burst)
            eval(RedisScripts.tokenBucket, keyCount: 1, args: args, slot: RedisClusterSlot.slot(of: args[0])) { [self] reply in
                analyticsInFlight -= 1
                completion(RedisAnalyticsWire.wait(reply))
            }
        }
    }

    public func appendAnalytics(_ events: [AnalyticsEvent], maxLength: Int) {
        guard !events.isEmpty else { return }
        onLoop { [self] in
            let dropped = clusterMetrics.analyticsDropped
            guard state == .up else { return dropped.add(events.count) }
            let slot = RedisClusterSlot.slot(of: analyticsStream)
            for e in events {
                guard analyticsInFlight < RedisBus.maxAnalyticsInFlight else {
                    dropped.add()
                    continue
                }
                analyticsInFlight += 1
                router.send(RedisAnalyticsWire.append(e, stream: analyticsStream, maxLength: maxLength), slot: slot) { [self] reply in
                    analyticsInFlight -= 1
                    if reply == nil || reply?.errorMessage != nil { dropped.add() }
                }
            }
        }
    }

    public func recentAnalytics(count: Int, completion: @escaping @Sendable ([AnalyticsEvent]) -> Void) {
        onLoop { [self] in
            guard state == .up else { return completion([]) }
            router.send(RedisAnalyticsWire.recent(stream: analyticsStream, count: count), slot: RedisClusterSlot.slot(of: analyticsStream)) {
                completion(RedisAnalyticsWire.events($0))
            }
        }
    }
}
