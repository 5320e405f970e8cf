import Foundation

extension RedisScripts {
    /// `publish` for Redis Cluster: the same script with `SPUBLISH` (Redis 7 sharded pub/sub) instead of
    /// `PUBLISH`, so the message goes out only on the shard that owns the room's slot, to that shard's
    /// `SSUBSCRIBE`rs. Called with the keys and channel of `RedisClusterKeys` (one hash tag per room), it
    /// never crosses slots. Keys, arguments and answers are those of `publish`.
    public static let publishSharded = RedisScript(
        name: "publish-sharded",
        source: publish.source
            .replacingFirst("-- switchboard publish v5:", with: "-- switchboard publish-sharded v5:")
            .replacingFirst("redis.call('PUBLISH', ARGV[1],", with: "redis.call('SPUBLISH', ARGV[1],"))

    /// `presence` for Redis Cluster: the same script without the `node-rooms` bookkeeping, whose set lives
    /// on the `{nodes}` slot and would make the script cross slots. Called with KEYS[1] the room's presence
    /// hash, KEYS[2] the same key again (unused, but a key of the room's slot keeps the arity), KEYS[3] the
    /// node's user set of the room (`RedisClusterKeys`); arguments and answer are those of `presence`.
    public static let presenceSharded = RedisScript(
        name: "presence-sharded",
        source: presence.source
            .replacingFirst("-- switchboard presence v2:", with: "-- switchboard presence-sharded v2:")
            .replacingFirst("redis.call('SADD', KEYS[2], ARGV[3])", with: "")
            .replacingFirst("redis.call('SREM', KEYS[2], ARGV[3])", with: ""))
}

extension String {
    /// `self` with the first occurrence of `target` replaced (unchanged when absent).
    fileprivate func replacingFirst(_ target: String, with replacement: String) -> String {
        guard let r = range(of: target) else { return self }
        return replacingCharacters(in: r, with: replacement)
    }
}
