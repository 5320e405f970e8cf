import Runtime

/// What the node registry keeps on the bus loop in cluster mode (`RedisClusterBus+Registry.swift`).
struct RedisClusterNodeState {
    /// How often the registry key is refreshed, and how long it lives without a refresh (ms).
    var heartbeatIntervalMilliseconds: Int
    var nodeTTLMilliseconds: Int
    var cancelHeartbeat: (() -> Void)?
    var heartbeatInFlight = false
    /// Set by the first heartbeat answered: until then presence writes wait (the first one clears this
    /// node id's entries left by an earlier process).
    var registered = false
    /// `node-up` until a heartbeat carried it.
    var announce: String? = "node-up"
    var announcedDraining = false
    var drainingRequested = false
    /// Rooms this node listed in its `node-rooms` set (a room is added before its presence entry is written).
    var listedRooms: Set<String> = []
    /// Presence entries of expired nodes (or of this id's earlier process) still to remove, retried every heartbeat.
    var cleanup: [(node: String, room: String)] = []
    var cleanupRunning = 0
    /// Set by a clean stop: no heartbeat or presence write may recreate what `leave` removes.
    var leaving = false
    /// Duplicate `--node-id` detection from the heartbeat's answers.
    var nodeIDWatch = RedisNodeIDWatch()
}

/// The node registry, dead-node presence clean-up and the drain semaphore over Redis Cluster, with the
/// standalone scripts: every registry key carries the `{nodes}` hash tag (`RedisClusterKeys.nodesPrefix`
/// given as the scripts' prefix), so `heartbeat`, `leave` and `drain-slot` run on one slot.
///
/// Presence entries live on each room's slot, out of reach of a script on `{nodes}`: this node lists a room
/// in `{prefix}{nodes}node-rooms:{id}` before it writes its first entry there, and `heartbeat` (with its
/// "presence elsewhere" flag) hands back the rooms of every node whose key expired. The node that got them
/// removes the entries room by room (`presence-sharded` with count 0 for that node), retrying failures
/// every heartbeat: a SIGKILLed node's presence is gone within TTL + interval, as with one Redis. Unlike
/// there, the clean-up is not atomic with the expiry: if the cleaning node dies too before it finishes, the
/// remaining entries stay until the dead node's id registers again; and a node restarted under the same
/// id within the clean-up's few milliseconds may see one entry removed until its next write to that room.
extension RedisClusterBus: NodeRegistry {
    public func setNodeInfoProvider(_ provider: @escaping @Sendable () -> NodeInfo) {
        nodeInfoProvider.withLock { $0 = provider }
    }

    public func announceDraining() {
        onLoop { [self] in
            node.drainingRequested = true
            heartbeat()
        }
    }

    public func acquireDrainSlot(maxDraining: Int, ttlMilliseconds: Int, completion: @escaping @Sendable (Bool) -> Void) {
        onLoop { [self] in
            guard state == .up else { return completion(false) }
            runDrainSlot(mode: "acquire", maxDraining: maxDraining, ttlMilliseconds: ttlMilliseconds) { completion($0?.int == 1) }
        }
    }

    public func releaseDrainSlot() {
        onLoop { [self] in runDrainSlot(mode: "release", maxDraining: 0, ttlMilliseconds: 0) { _ in } }
    }

    /// No extra readiness detail yet: `/ready` follows the slot map (`state`).
    public var readinessDetail: (name: String, json: String)? { nil }

    /// No cluster families yet (the standalone `switchboard_redis_*` ones describe one Redis).
    public func writeMetrics(to writer: inout PrometheusWriter) {}

    private func runDrainSlot(mode: String, maxDraining: Int, ttlMilliseconds: Int, _ completion: @escaping (RedisReply?) -> Void) {
        let args = RedisScripts.drainSlotArguments(
            key: keys.drainSlots, node: keys.nodeID, maxDraining: maxDraining, ttlMilliseconds: ttlMilliseconds, mode: mode)
        eval(RedisScripts.drainSlot, keyCount: 1, args: args, slot: RedisClusterKeys.nodesSlot, completion)
    }

    func nodeInfo() -> NodeInfo {
        var info = nodeInfoProvider.withLock { $0 }?() ?? NodeInfo()
        if info.startedAtMilliseconds == 0 { info.startedAtMilliseconds = startedAtMilliseconds }
        if node.drainingRequested { info.draining = true }
        return info
    }

    // MARK: - Heartbeat

    func scheduleHeartbeat() {
        node.cancelHeartbeat = loop.runAfter(milliseconds: node.heartbeatIntervalMilliseconds) { [weak self] in
            guard let self, !self.stopped else { return }
            self.heartbeat()
            self.scheduleHeartbeat()
        }
    }

    /// Refreshes the registry key (the first one clears this id's old presence and announces `node-up`),
    /// then removes the presence of the nodes it found expired.
    func heartbeat() {
        guard state == .up, !node.heartbeatInFlight, !stopped, !node.leaving else { return }
        let info = nodeInfo()
        var event = node.announce ?? ""
        if info.draining && !node.announcedDraining { event = "node-draining" }
        let reset = !node.registered
        let json = info.json(nodeID: keys.nodeID)
        let args: [[UInt8]] = [
            Array(keys.nodes.utf8), Array(keys.nodesPrefix.utf8), Array(keys.nodeID.utf8), json,
            Array(String(node.nodeTTLMilliseconds).utf8), Array(event.utf8), Array((reset ? "1" : "0").utf8), Array("1".utf8),
            // The clean-up lease: rooms this node is handed and does not clear within it go to another node.
            Array(String(node.nodeTTLMilliseconds).utf8)
        ]
        node.heartbeatInFlight = true
        eval(RedisScripts.heartbeat, keyCount: 1, args: args, slot: RedisClusterKeys.nodesSlot) { [self] reply in
            node.heartbeatInFlight = false
            guard let reply else { return node.nodeIDWatch.lost() }
            guard let parts = reply.array, parts.count == 4 else {
                return log(.warn, "heartbeat script failed (cluster)", [("error", .string(reply.errorMessage ?? "unexpected answer"))])
            }
            let previous: [UInt8] = if case .string(let b) = parts[2] { b } else { [] }
            if RedisNodeIDWatch.log(node.nodeIDWatch.answered(previous: previous, wrote: json, reset: reset), nodeID: keys.nodeID, log) {
                clusterMetrics.nodeIDConflicts.add()
            }
            // Announced (a `node-draining` replaces a pending `node-up`, as with one Redis).
            node.announce = nil
            if event == "node-draining" { node.announcedDraining = true }
            if reset || parts[0].int == 0 {
                if !reset { log(.warn, "registry key had expired; rewriting presence (cluster)", []) }
                // Our node-rooms set is gone (cleared here, or by the node that found us expired): list and
                // write every room again.
                node.registered = true
                node.listedRooms = []
                presenceTable.markAllDirty()
            }
            for id in parts[1].array ?? [] {
                if let dead = id.text { log(.info, "removed a dead node from the registry (cluster)", [("dead_node", .string(dead))]) }
            }
            for entry in parts[3].array ?? [] {
                guard let pair = entry.array, pair.count == 2, let id = pair[0].text else { continue }
                for room in (pair[1].array ?? []).compactMap(\.text) {
                    if id == keys.nodeID && presenceTable.count(of: room) > 0 {
                        // Our own room with members now: the rewrite keeps its entry; only strike it from the list.
                        strikeFromCleaning(id, room)
                    } else {
                        node.cleanup.append((id, room))
                    }
                }
            }
            runCleanup()
            flushPresence()
        }
        if node.cleanupRunning == 0 { runCleanup() }
    }

    /// `room` needs no clean-up for node `id` any more: off `{prefix}{nodes}cleaning-rooms:{id}` (heartbeat v5).
    private func strikeFromCleaning(_ id: String, _ room: String) {
        router.send(RedisCommand(["SREM", keys.nodesPrefix + "cleaning-rooms:" + id, room]), slot: RedisClusterKeys.nodesSlot) { _ in }
    }

    /// Removes the pending presence entries of dead nodes (one script call per room, on the room's slot), then
    /// strikes each cleared room from the node's `cleaning-rooms` set. A failure is left there: when this node's
    /// lease ends, a heartbeat (this node's or another's) is handed the rooms left.
    private func runCleanup() {
        guard node.cleanupRunning == 0, !node.cleanup.isEmpty else { return }
        let batch = node.cleanup
        node.cleanup = []
        node.cleanupRunning = batch.count
        for (id, room) in batch {
            writePresence(RedisPresenceTable.Write(room: room, count: 0, replaceUsers: true, added: [], removed: []), node: id) { [self] ok in
                node.cleanupRunning -= 1
                guard ok else { return }
                strikeFromCleaning(id, room)
            }
        }
    }

    /// A clean stop: this node's presence removed room by room, its drain slot released, then `leave`
    /// (registry key, `node-rooms`, `node-down`). When a room cannot be cleared the registry key is left to
    /// expire, so another node cleans up after the TTL. `done` once finished or after 1 s.
    func leaveCluster(_ done: @escaping () -> Void) {
        guard state == .up, node.registered else { return done() }
        node.leaving = true
        var finished = false
        let finish = {
            guard !finished else { return }
            finished = true
            done()
        }
        _ = loop.runAfter(milliseconds: 1000) { finish() }
        runDrainSlot(mode: "release", maxDraining: 0, ttlMilliseconds: 0) { _ in }
        let rooms = node.listedRooms
        var left = rooms.count
        var failed = false
        let leave = { [self] in
            guard !failed else { return finish() }
            let args: [[UInt8]] = [Array(keys.nodes.utf8), Array(keys.nodesPrefix.utf8), Array(keys.nodeID.utf8), Array("1".utf8)]
            eval(RedisScripts.leave, keyCount: 1, args: args, slot: RedisClusterKeys.nodesSlot) { _ in finish() }
        }
        guard !rooms.isEmpty else { return leave() }
        for room in rooms {
            writePresence(RedisPresenceTable.Write(room: room, count: 0, replaceUsers: true, added: [], removed: []), node: keys.nodeID) { ok in
                if !ok { failed = true }
                left -= 1
                if left == 0 { leave() }
            }
        }
    }
}
