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
            var cmd = RedisCommand("SET", argumentCount: 5, capacity: value.count + key.utf8.count + 32)
            cmd.append(sessionKey(key))
            cmd.append(value)
            cmd.append("PX")
            cmd.append(max(1, ttlMilliseconds))
            conn.send(cmd) { _ in }
        }
    }

    /// `GET {prefix}sio:session:{key}`; nil while Redis is down. `completion` runs on the bus loop.
    public func loadSession(key: String, completion: @escaping @Sendable ([UInt8]?) -> Void) {
        onLoop { [self] in
            guard commands != nil, commands.isReady, let conn = commands.connection else { return completion(nil) }
            var cmd = RedisCommand("GET", argumentCount: 2)
            cmd.append(sessionKey(key))
            let sent = conn.send(cmd) { reply in
                if case .string(let bytes) = reply { completion(bytes) } else { completion(nil) }
            }
            if !sent { completion(nil) }
        }
    }
}
