import Protocol
import Runtime

/// Presence over Redis Cluster: each room's presence hash and per-node user sets carry the room's hash tag
/// (`RedisClusterKeys.presence`, `.presenceUsers`), so one room's presence is one slot and the standalone
/// scripts run unchanged (`RedisScripts.presenceSharded` only drops the cross-slot `node-rooms` set;
/// `presenceRead` is given the tagged room so the user-set names it builds are the tagged ones).
///
/// Batched like `RedisBus`: `RedisPresenceTable` coalesces a tick's changes into one script call per room.
/// A write that fails (shard down, connection lost before the answer) is retried in full on the next
/// slot-map refresh (every 2 s). Not done yet: removing the entries of a crashed node (no registry or
/// heartbeat in cluster mode), so a SIGKILLed node's counts stay until its room entries are overwritten.
extension RedisClusterBus: PresenceBus {
    public func setPresence(room: String, localCount: Int) {
        onLoop { [self] in
            if presenceTable.set(room: room, count: localCount) { schedulePresenceFlush() }
        }
    }

    public func setPresenceUser(room: String, user: String, present: Bool) {
        onLoop { [self] in
            if presenceTable.setUser(room: room, user: user, present: present) { schedulePresenceFlush() }
        }
    }

    /// Cluster-wide presence of `room`, read from the room's shard. Fails with `BusError.unavailable`
    /// while the slot map does not cover every slot, or when the shard does not answer.
    public func presence(room: String, completion: @escaping @Sendable (Result<PresenceCount, BusError>) -> Void) {
        onLoop { [self] in
            guard state == .up else { return completion(.failure(.unavailable("the Redis cluster is not serving every slot"))) }
            let args: [[UInt8]] = [Array(keys.presence(room).utf8), Array(keys.prefix.utf8), Array(("{" + RedisClusterKeys.tag(room) + "}").utf8)]
            eval(RedisScripts.presenceRead, keyCount: 1, args: args, slot: keys.slot(ofRoom: room)) { reply in
                guard let items = reply?.array, items.count == 2, let connections = items[0].int, let users = items[1].int else {
                    return completion(.failure(.unavailable("presence read failed")))
                }
                completion(.success(PresenceCount(connections: connections, users: users)))
            }
        }
    }

    private func schedulePresenceFlush() {
        guard !presenceFlushScheduled else { return }
        presenceFlushScheduled = true
        loop.execute { [self] in
            presenceFlushScheduled = false
            flushPresence()
        }
    }

    /// Writes the changed rooms (one script call per room, on the room's shard).
    func flushPresence() {
        guard state == .up, presenceTable.needsFlush else { return }
        for write in presenceTable.flush() {
            let room = write.room
            var args: [[UInt8]] = [
                Array(keys.presence(room).utf8), Array(keys.presence(room).utf8),
                Array(keys.presenceUsers(room, node: keys.nodeID).utf8), Array(keys.nodeID.utf8),
                Array(String(write.count).utf8), Array(room.utf8), Array((write.replaceUsers ? "1" : "0").utf8),
                Array(String(write.added.count).utf8)
            ]
            for u in write.added + write.removed { args.append(Array(u.utf8)) }
            eval(RedisScripts.presenceSharded, keyCount: 3, args: args, slot: keys.slot(ofRoom: room)) { [self] reply in
                if reply == nil || reply?.errorMessage != nil {
                    presenceTable.markDirty(room)
                    if let e = reply?.errorMessage { log(.warn, "presence write failed (cluster)", [("room", .string(room)), ("error", .string(e))]) }
                }
            }
        }
    }
}
