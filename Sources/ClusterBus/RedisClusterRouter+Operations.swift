import Runtime

/// The router's operational side: the refresh rate limit, counting and logging per node, and the TLS name
/// of each node.
extension RedisClusterRouter {
    /// Asks the limiter whether a refresh may start now. If not, it either arms the one timer that starts the
    /// merged refresh at the end of the interval, or the request joins the one already armed.
    func admitRefresh() -> Bool {
        let now = monotonicMilliseconds()
        switch limiter.request(now: now) {
        case .startNow:
            return true
        case .merged:
            metrics.refreshesMerged.add()
            return false
        case .startAt(let at):
            _ = loop.runAfter(milliseconds: Int(at > now ? at - now : 0)) { [weak self] in self?.startRefresh() }
            return false
        }
    }

    /// `TRYAGAIN`: a multi-key command met a slot whose keys are split between the migrating and the importing
    /// node (a room's history moved, its meta not yet). Nothing ran; the same hop is sent again after 20, 40,
    /// 80 … ms (within the redirect budget), by when the migration of those keys has usually finished.
    func tryAgainLater(_ command: RedisCommand, host: String, port: Int, asking: Bool, hops: Int, _ completion: @escaping (RedisReply?) -> Void) {
        metrics.tryAgains.add()
        _ = loop.runAfter(milliseconds: 20 << hops) { [weak self] in
            guard let self else { return completion(nil) }
            self.dispatch(command, host: host, port: port, asking: asking, hops: hops + 1, completion)
        }
    }

    /// Counts a loaded map and sets the gauges.
    func countRefresh(_ fresh: RedisClusterMap) {
        let uncovered = fresh.uncoveredSlots
        if uncovered.isEmpty { metrics.refreshesComplete.add() } else { metrics.refreshesUncovered.add() }
        metrics.uncoveredSlots.set(uncovered.reduce(0) { $0 + $1.count })
        metrics.primaries.set(fresh.shards.filter { $0.primary != nil }.count)
    }

    /// A connection to `address` could not be opened or was lost: counted, remembered for the refresh
    /// error, logged once per change of reason (`logThrottle`), and a named host is looked up again next time.
    func connectionFailed(_ address: String, host: String, reason: String) {
        metrics.nodeFailed(address)
        // Closed by us (after a refused handshake): the refusal already said why.
        if reason == "connection closed", lastConnectError[address] != nil { return }
        lastConnectError[address] = reason
        resolver.forget(host)
        if logThrottle.shouldLog("conn \(address)", reason, now: monotonicMilliseconds()) {
            log(.warn, "redis cluster node connection failed", [("redis_node", .string(address)), ("error", .string(reason))])
        }
        metrics.updateHealth { $0.lastError = "\(address): \(reason)" }
    }

    /// The node refused the handshake (`AUTH`: `WRONGPASS`, `NOAUTH`, a user without rights): the connection
    /// is closed; commands queued behind it fail.
    func handshakeRefused(_ address: String, error: String) {
        let reason = Self.explain(error)
        lastConnectError[address] = reason
        handshakeErrors[address] = reason
        if logThrottle.shouldLog("auth \(address)", reason, now: monotonicMilliseconds()) {
            log(.error, "redis cluster node refused the handshake", [("redis_node", .string(address)), ("error", .string(reason))])
        }
        metrics.updateHealth { $0.lastError = "\(address): \(reason)" }
    }

    /// The name `host:port`'s certificate must cover: the hostname the node announces (`cluster-announce-hostname`),
    /// else the address it was reached by (a seed's name, or the announced endpoint).
    func tlsName(host: String, port: Int) -> String { Self.tlsName(host: host, port: port, map: map) }

    /// `tlsName(host:port:)` over `map` (a value: tested without sockets).
    static func tlsName(host: String, port: Int, map: RedisClusterMap?) -> String {
        guard let map else { return host }
        for shard in map.shards {
            for node in [shard.primary].compactMap({ $0 }) + shard.replicas where node.host == host && node.port == port {
                if let name = node.hostname, !name.isEmpty { return name }
            }
        }
        return host
    }

    /// A Redis error made actionable: a seed not in cluster mode and refused credentials get a hint.
    static func explain(_ error: String) -> String {
        if error.contains("cluster support disabled") {
            return "\(error) (this node is not in cluster mode: use --redis-url redis://… for a single Redis, or set cluster-enabled yes)"
        }
        if error.contains("WRONGPASS") || error.contains("NOAUTH") || error.contains("invalid password") {
            return "\(error) (check the user and password of the redis-cluster:// URL)"
        }
        return error
    }
}
