import Runtime

/// Drain coordination over Redis (the `NodeRegistry` drain hooks): the registry says `draining`, `{prefix}ctl`
/// announces `node-draining`, and a cluster-wide semaphore (`RedisScripts.drainSlot`) lets at most
/// `--max-draining` nodes drain at once. Slots expire after their TTL, so a node killed mid-drain cannot
/// hold one forever; `shutdown` releases the slot with the node's other entries.
extension RedisBus {
    public func announceDraining() {
        onLoop { [self] in
            drainingRequested = true
            if commands != nil, commands.isReady { sendHeartbeat() }
        }
    }

    public func acquireDrainSlot(maxDraining: Int, ttlMilliseconds: Int, completion: @escaping @Sendable (Bool) -> Void) {
        onLoop { [self] in
            runDrainSlot(mode: "acquire", maxDraining: maxDraining, ttlMilliseconds: ttlMilliseconds) { reply in
                completion(reply?.int == 1)
            }
        }
    }

    public func releaseDrainSlot() {
        onLoop { [self] in
            runDrainSlot(mode: "release", maxDraining: 0, ttlMilliseconds: 0) { _ in }
        }
    }

    func runDrainSlot(mode: String, maxDraining: Int, ttlMilliseconds: Int, completion: @escaping (RedisReply?) -> Void) {
        guard commands != nil, commands.isReady, let conn = commands.connection, let sha = scriptSHAs[RedisScripts.drainSlot.name] else {
            completion(nil)
            return
        }
        let args = RedisScripts.drainSlotArguments(
            key: keys.drainSlots, node: keys.nodeID, maxDraining: maxDraining, ttlMilliseconds: ttlMilliseconds, mode: mode)
        let build = { (sha: String) -> RedisCommand in
            var cmd = RedisCommand("EVALSHA", argumentCount: 3 + args.count)
            cmd.append(sha)
            cmd.append("1")
            for a in args { cmd.append(a) }
            return cmd
        }
        evalScript(RedisScripts.drainSlot, on: conn, sha: sha, build, completion)
    }
}
