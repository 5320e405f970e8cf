import Protocol
import Runtime

/// Presence over Redis Cluster: each room's presence hash and per-node user sets carry the room's hash tag
/// (`RedisClusterKeys.presence`, `.presenceUsers`), so one room's presence is one slot and the standalone
/// scripts run unchanged (`RedisScripts.presenceSharded` only drops the cross-slot `node-rooms` set;
/// `presenceRead` is given the tagged room so the user-set names it builds are the tagged ones).
///
/// Batched like `RedisBus`: `RedisPresenceTable` coalesces a tick's changes into one script call per room.
/// A write that fails (shard down, connection lost before the answer) is retried in full on the next
/// slot-map refresh (every 2 s). A crashed node's entries are removed by the others' heartbeats (through
/// the `node-rooms` set on `{nodes}`, `RedisClusterBus+Registry.swift`); a clean stop removes its own.
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

    /// Writes the changed rooms (one script call per room, on the room's shard) once the registry took this
    /// node (`RedisClusterBus+Registry.swift`). Rooms new to this node go into its `node-rooms` set first,
    /// so a crash after the entry is written still leaves the room for the dead-node clean-up to find.
    func flushPresence() {
        guard state == .up, node.registered, !node.leaving, presenceTable.needsFlush else { return }
        let writes = presenceTable.flush()
        let unlisted = writes.filter { $0.count > 0 && !node.listedRooms.contains($0.room) }.map(\.room)
        guard !unlisted.isEmpty else { return writeOwnPresence(writes) }
        router.send(RedisCommand(["SADD", keys.nodeRooms(keys.nodeID)] + unlisted), slot: RedisClusterKeys.nodesSlot) { [self] reply in
            guard let reply, reply.errorMessage == nil else {
                for w in writes { presenceTable.markDirty(w.room) }
                return
            }
            node.listedRooms.formUnion(unlisted)
            writeOwnPresence(writes)
        }
    }

    private func writeOwnPresence(_ writes: [RedisPresenceTable.Write]) {
        for write in writes {
            let room = write.room
            writePresence(write, node: keys.nodeID) { [self] ok in
                guard ok else { return presenceTable.markDirty(room) }
                // Gone from the room (and still gone): unlist it, after the entry is removed.
                if write.count == 0, presenceTable.count(of: room) == 0, node.listedRooms.remove(room) != nil {
                    router.send(RedisCommand(["SREM", keys.nodeRooms(keys.nodeID), room]), slot: RedisClusterKeys.nodesSlot) { _ in }
                }
            }
        }
    }

    /// Applies `write` to `node`'s entry in the room (`presence-sharded` on the room's slot); `completion(true)`
    /// when Redis answered without an error. Also removes a dead node's entry (count 0).
    func writePresence(_ write: RedisPresenceTable.Write, node id: String, _ completion: @escaping (Bool) -> Void) {
        let room = write.room
        var args: [[UInt8]] = [
            Array(keys.presence(room).utf8), Array(keys.presence(room).utf8),
            Array(keys.presenceUsers(room, node: id).utf8), Array(id.utf8),
            Array(String(write.count).utf8), Array(room.utf8), Array((write.replaceUsers ? "1" : "0").utf8),
            Array(String(write.added.count).utf8)
        ]
        for u in write.added + write.removed { args.append(Array(u.utf8)) }
        eval(RedisScripts.presenceSharded, keyCount: 3, args: args, slot: keys.slot(ofRoom: room)) { [self] reply in
            if let e = reply?.errorMessage { log(.warn, "presence write failed (cluster)", [("room", .string(room)), ("error", .string(e))]) }
            completion(reply != nil && reply?.errorMessage == nil)
        }
    }
}
