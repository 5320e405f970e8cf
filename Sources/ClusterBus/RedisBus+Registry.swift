import Runtime

/// The heartbeat: node registry refresh, dead-node cleanup, cluster announcements and the canary.
///
/// Every `heartbeatIntervalMilliseconds` (default 2 s), while the commands connection is ready, the
/// heartbeat script sets `{prefix}node:{id}` with a TTL of `nodeTTLMilliseconds` (default 6 s) and removes
/// the presence entries of nodes whose key expired. A SIGKILLed node's key expires at most one TTL after its
/// last heartbeat and the next heartbeat of any live node cleans up after it: within TTL + interval < 2 × TTL.
/// While both connections are ready, each heartbeat also sends a canary (see `RedisCanary`).
extension RedisBus {
    func scheduleHeartbeat() {
        cancelHeartbeat = loop.runAfter(milliseconds: configuration.heartbeatIntervalMilliseconds) { [weak self] in
            guard let self, !self.stopping else { return }
            self.heartbeatTick()
            self.scheduleHeartbeat()
        }
    }

    func heartbeatTick() {
        if commands.isReady { sendHeartbeat() }
        // Presence writes Redis refused are retried here, once per heartbeat rather than every tick.
        if commands.isReady && presenceTable.needsFlush { flushPresence() }
        if commands.isReady, subscriber.isReady, subscriptions.isActive(keys.ownControlChannel), canary.outstanding == nil {
            sendCanary()
        }
    }

    /// Refreshes the registry key now (announcing `node-up` after a (re)connect, `node-draining` once).
    func sendHeartbeat() {
        guard let conn = commands.connection, let sha = scriptSHAs[RedisScripts.heartbeat.name] else { return }
        let info = nodeInfo()
        var event = announceOnNextHeartbeat ?? ""
        let reset = announceOnNextHeartbeat == "node-up"
        announceOnNextHeartbeat = nil
        if info.draining && !announcedDraining {
            announcedDraining = true
            event = "node-draining"
        }
        let json = info.json(nodeID: keys.nodeID)
        let build = { [keys, configuration] (sha: String) -> RedisCommand in
            var cmd = RedisCommand("EVALSHA", argumentCount: 10, capacity: json.count + 128)
            cmd.append(sha)
            cmd.append("1")
            cmd.append(keys.nodes)
            cmd.append(keys.prefix)
            cmd.append(keys.nodeID)
            cmd.append(json)
            cmd.append(configuration.nodeTTLMilliseconds)
            cmd.append(event)
            cmd.append(reset ? "1" : "0")
            return cmd
        }
        if reset { presenceTable.markAllDirty() }
        evalScript(RedisScripts.heartbeat, on: conn, sha: sha, build) { [self] reply in
            guard let reply else {
                nodeIDWatch.lost()
                return
            }
            guard let parts = reply.array, parts.count >= 3 else {
                logger(.warn, "heartbeat script failed", [("reply", .string(describe(reply)))])
                return
            }
            let previous: [UInt8] = if case .string(let b) = parts[2] { b } else { [] }
            let finding = nodeIDWatch.answered(previous: previous, wrote: json, reset: reset)
            if RedisNodeIDWatch.log(finding, nodeID: keys.nodeID, logger) { metrics.nodeIDConflicts.add() }
            if parts[0].int == 0 && !reset {
                // Our key had expired (we were given up for dead): our presence entries are gone; rewrite them.
                logger(.warn, "registry key had expired; rewriting presence", [])
                presenceTable.markAllDirty()
                scheduleTickFlush()
            }
            for id in parts[1].array ?? [] {
                guard let node = id.text else { continue }
                metrics.deadNodesCleaned.add()
                logger(.info, "removed presence of a dead node", [("dead_node", .string(node))])
            }
        }
        if reset { scheduleTickFlush() }
    }

    // MARK: - Canary

    /// Publishes canary n on this node's own control channel and arms its deadline.
    func sendCanary() {
        guard let conn = commands.connection else { return }
        let now = monotonicMilliseconds()
        let seq = canary.send(now: now)
        let sent = conn.send(RedisCommand(["PUBLISH", keys.ownControlChannel, "canary:\(seq)"])) { _ in }
        guard sent else { return }
        cancelCanaryCheck?()
        cancelCanaryCheck = loop.runAfter(milliseconds: configuration.canaryTimeoutMilliseconds + 1) { [weak self] in
            guard let self else { return }
            self.cancelCanaryCheck = nil
            if case .late(let ms) = self.canary.verdict(now: monotonicMilliseconds()) { self.canaryFailed(afterMilliseconds: ms) }
        }
    }

    func handleCanary(_ payload: UnsafeRawBufferPointer) {
        let text = String(decoding: payload, as: UTF8.self)
        guard text.hasPrefix("canary:"), let seq = UInt64(text.dropFirst(7)) else { return }
        if canary.received(sequence: seq, now: monotonicMilliseconds()) {
            cancelCanaryCheck?()
            cancelCanaryCheck = nil
            let rtt = canary.lastRoundTripMilliseconds
            updateHealth { $0.canaryRoundTripMilliseconds = rtt }
        }
    }

    /// The canary did not come back in time: the subscription may be dead while its socket looks fine.
    /// Mark the bus down (readiness 503) and reconnect both connections.
    func canaryFailed(afterMilliseconds ms: Int) {
        metrics.canaryFailures.add()
        canaryHealthy = false
        let failures = metrics.canaryFailures.load()
        updateHealth {
            $0.canaryHealthy = false; $0.canaryFailures = failures; $0.lastError = "canary not back after \(ms) ms"
        }
        logger(.warn, "canary missing or late: reconnecting to Redis", [("after_ms", .int(ms)), ("timeout_ms", .int(configuration.canaryTimeoutMilliseconds))])
        canary.reset()
        updateState()
        subscriber.fail(subscriber.connection, reason: "canary not back after \(ms) ms")
        commands.fail(commands.connection, reason: "canary not back after \(ms) ms")
    }
}
