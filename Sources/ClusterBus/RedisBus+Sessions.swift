import Runtime

/// Session records in Redis (``SessionStore``): `{prefix}sio:session:{key}` as a string with a TTL
/// (`SET … PX`), read with `GET`, so any node of the cluster reads what another one wrote.
extension RedisBus: SessionStore {
    /// The Redis key of the session record `key`.
    func sessionKey(_ key: String) -> String { keys.prefix + "sio:session:" + key }

    /// `SET {prefix}sio:session:{key} value PX ttl` on the commands connection; dropped while Redis is down.
    public func storeSession(key: String, value: [UInt8], ttlMilliseconds: Int) {
        onLoop { [self] in
            // Best effort: a record that cannot be written means a later reconnect is not recovered.
            guard commands != nil, commands.isReady, let conn = commands.connection else { return }
            conn.send(RedisSessionWire.store(sessionKey(key), value: value, ttlMilliseconds: ttlMilliseconds)) { _ in }
        }
    }

    /// `GET {prefix}sio:session:{key}`; nil while Redis is down. `completion` runs on the bus loop.
    public func loadSession(key: String, completion: @escaping @Sendable ([UInt8]?) -> Void) {
        onLoop { [self] in
            guard commands != nil, commands.isReady, let conn = commands.connection else { return completion(nil) }
            let sent = conn.send(RedisSessionWire.load(sessionKey(key))) { reply in completion(RedisSessionWire.value(reply)) }
            if !sent { completion(nil) }
        }
    }
}

/// The session record commands, the same on one Redis and on a cluster (routed by the key's slot).
enum RedisSessionWire {
    /// `SET {redisKey} value PX ttl` (TTL at least 1 ms).
    static func store(_ redisKey: String, value: [UInt8], ttlMilliseconds: Int) -> RedisCommand {
        var cmd = RedisCommand("SET", argumentCount: 5, capacity: value.count + redisKey.utf8.count + 32)
        cmd.append(redisKey)
        cmd.append(value)
        cmd.append("PX")
        cmd.append(max(1, ttlMilliseconds))
        return cmd
    }

    /// `GET {redisKey}`.
    static func load(_ redisKey: String) -> RedisCommand { RedisCommand(["GET", redisKey]) }

    /// The record of a `load` reply; nil when absent, an error or no reply.
    static func value(_ reply: RedisReply?) -> [UInt8]? {
        if case .string(let bytes)? = reply { return bytes }
        return nil
    }
}
