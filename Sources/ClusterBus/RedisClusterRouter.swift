import CHiredis
import Runtime

/// Commands and sharded subscriptions over a Redis Cluster, on one event loop: the slot map
/// (`RedisClusterMap`, from `CLUSTER SHARDS` of a seed or any known primary), one command connection and
/// one sharded-subscriber connection per primary (opened on first use), `MOVED` and `ASK` followed.
///
/// - `send(_:slot:_:)` goes to the slot's primary. `MOVED` updates the map for that slot, schedules a full
///   refresh and resends; `ASK` resends once to the named node preceded by `ASKING` (same connection, so
///   pipelined together). `TRYAGAIN` (a multi-key command while a migration has split its keys) is sent again
///   after 20, 40, 80 … ms. At most `maxRedirects` hops, then the last error is the answer. A command for a
///   slot no primary serves (uncovered, failed primary) refreshes the map once and then answers nil (the
///   caller's "refused").
/// - `ssubscribe(_:slot:)` keeps the channel wanted; it is subscribed on the owning primary's subscriber
///   connection and subscribed again wherever the slot lives after a refresh, a lost connection, a refused
///   `SSUBSCRIBE` (`MOVED`) or the server's own `sunsubscribe` (the slot migrated away, or a failover made
///   the node a replica). Every loss is reported through `onSubscriptionLost` before the new confirmation
///   arrives as an `ssubscribe` push, so the owner back-fills from history in between (no gap).
///
/// Operations (`RedisClusterRouter+Operations.swift`): refreshes are rate-limited (`RedisRefreshLimiter`,
/// one per 100 ms, merged), node names are resolved off the loop (`RedisHostResolver`), every connection
/// may be TLS (`makeTransport`), and redirects, refreshes, resubscribes and per-node connects and failures
/// are counted in `metrics` where they happen, with problems logged once per change (`RedisLogThrottle`).
///
/// Loop-confined. Connections carry no handshake beyond `handshake` (AUTH when set).
final class RedisClusterRouter: RedisConnectionDelegate {
    let loop: EventLoop
    private let context: SocketContext
    private let seeds: [(host: String, port: Int)]
    let metrics: RedisClusterMetrics
    /// Where problem lines go (the bus's logger).
    var log: RedisBusLogger = { _, _, _ in }
    /// Builds each connection's transport from the name its certificate must cover (`tlsName(host:port:)`);
    /// nil: plain TCP. Set for `rediss-cluster://` (`RedisClusterBus.useTLS`).
    var makeTransport: ((_ serverName: String) -> (CInt) -> (any Transport)?)?
    /// Prefer the nodes' `tls-port` in `CLUSTER SHARDS` (set with `makeTransport`).
    var preferTLSPort = false
    let resolver: RedisHostResolver
    var limiter = RedisRefreshLimiter()
    var logThrottle = RedisLogThrottle()
    /// Channels an `SSUBSCRIBE` was sent for (a later one for the same channel is a resubscribe).
    private var subscribedBefore: Set<String> = []
    /// Per node address, why its last connection failed (named in refresh errors).
    var lastConnectError: [String: String] = [:]
    /// Per node address, the handshake refusal (`WRONGPASS …`) of its newest connection: the root cause when
    /// the `CLUSTER SHARDS` behind it then fails with `NOAUTH`.
    var handshakeErrors: [String: String] = [:]
    private var stopped = false
    /// Sent first on every new connection (e.g. `AUTH`), answers ignored unless errors (then the connection is dropped).
    var handshake: [RedisCommand] = []
    private(set) var map: RedisClusterMap?
    /// False when the node that answered the last refresh said `cluster_state:fail` (CLUSTER INFO): with
    /// `cluster-require-full-coverage yes` (the default) it then refuses commands for every slot.
    private(set) var clusterStateOK = true
    private var commandConnections: [String: RedisConnection] = [:]
    private var subscriberConnections: [String: RedisConnection] = [:]
    /// Wanted sharded channels → their slot.
    private var wanted: [String: Int] = [:]
    /// Channel → the node address it is subscribed (or subscribing) on.
    private var subscribedOn: [String: String] = [:]
    private var refreshing = false
    private var refreshAgain = false
    private var refreshWaiters: [(Result<Void, RedisClusterError>) -> Void] = []
    static let maxRedirects = 5
    /// A command connection with replies pending that reads nothing for this long is closed, its commands
    /// answered nil (RedisClusterRouter+Stalls.swift); 0 = never.
    var stallLimitMs = 5000
    /// Command connections whose stall check is armed.
    var stallWatched: Set<ObjectIdentifier> = []

    /// `smessage` / `ssubscribe` / `sunsubscribe` pushes from any shard (valid during the call).
    var onPush: (UnsafePointer<redisReply>) -> Void = { _ in }
    /// A wanted channel stopped receiving (connection lost, slot moved): back-fill after its next confirmation.
    var onSubscriptionLost: (String) -> Void = { _ in }
    /// A refresh failed or found uncovered slots: one line for the log and `/ready`.
    var onTopologyProblem: (String) -> Void = { _ in }
    /// A refresh loaded a map (check `uncoveredSlots` for its health).
    var onRefreshed: (RedisClusterMap) -> Void = { _ in }
    /// Redirects followed, refreshes done (metrics).
    private(set) var redirects = 0
    private(set) var refreshes = 0

    init(loop: EventLoop, seeds: [(host: String, port: Int)], metrics: RedisClusterMetrics = RedisClusterMetrics()) {
        self.loop = loop
        self.context = SocketContext(loop: loop)
        self.seeds = seeds
        self.metrics = metrics
        self.resolver = RedisHostResolver(loop: loop)
    }

    /// Closes every connection (pending commands complete with nil).
    func stop() {
        stopped = true
        for c in commandConnections.values { c.delegate = nil; c.close() }
        for c in subscriberConnections.values { c.delegate = nil; c.close() }
        commandConnections = [:]
        subscriberConnections = [:]
        subscribedOn = [:]
    }

    // MARK: - Slot map

    /// Loads the slot map (`CLUSTER SHARDS`) from the known primaries, then the seeds, first answer wins.
    /// Concurrent calls share one refresh. Errors: the last node's problem (not in cluster mode, unreachable).
    func refresh(_ completion: @escaping (Result<Void, RedisClusterError>) -> Void = { _ in }) {
        refreshWaiters.append(completion)
        if refreshing {
            if refreshAgain { metrics.refreshesMerged.add() }
            refreshAgain = true
            return
        }
        if admitRefresh() { startRefresh() }
    }

    /// Starts a refresh now (the limiter admitted it, or its timer fired).
    func startRefresh() {
        limiter.started(now: monotonicMilliseconds())
        guard !stopped else { return }
        if refreshing { refreshAgain = true; return }
        refreshing = true
        var candidates: [(host: String, port: Int)] = map.map { $0.shards.compactMap { $0.primary }.map { ($0.host, $0.port) } } ?? []
        candidates += seeds
        tryRefresh(candidates[...], lastError: RedisClusterError("no seed nodes"))
    }

    private func tryRefresh(_ candidates: ArraySlice<(host: String, port: Int)>, lastError: RedisClusterError) {
        guard let next = candidates.first else { return finishRefresh(.failure(lastError)) }
        if resolver.needsLookup(next.host) { return resolver.resolve(next.host) { [self] in tryRefresh(candidates, lastError: lastError) } }
        let conn = connection(host: next.host, port: next.port, subscriber: false)
        // CLUSTER INFO rides along (pipelined): its `cluster_state` says whether the node serves any slot at all.
        var shards: RedisReply?
        let sent =
            conn?.send(RedisCommand(["CLUSTER", "SHARDS"])) { shards = $0 } == true
            && conn?.send(RedisCommand(["CLUSTER", "INFO"])) { [self, weak conn] info in
                clusterStateOK = info?.text.map { !$0.contains("cluster_state:fail") } ?? true
                guard let reply = shards else {
                    let why = conn?.closeReason ?? "connection lost"
                    return tryRefresh(candidates.dropFirst(), lastError: RedisClusterError("\(next.host):\(next.port): \(why)"))
                }
                do throws(RedisClusterError) {
                    let fresh = try RedisClusterMap(shardsReply: reply, preferTLSPort: preferTLSPort)
                    handshakeErrors["\(next.host):\(next.port)"] = nil
                    map = fresh
                    refreshes += 1
                    countRefresh(fresh)
                    onRefreshed(fresh)
                    finishRefresh(.success(()))
                } catch {
                    let why = handshakeErrors["\(next.host):\(next.port)"] ?? Self.explain(error.description)
                    tryRefresh(candidates.dropFirst(), lastError: RedisClusterError("\(next.host):\(next.port): \(why)"))
                }
            } == true
        if sent, let conn { watchForStall(conn) }
        if !sent {
            let why = resolver.failure(of: next.host) ?? lastConnectError["\(next.host):\(next.port)"] ?? "cannot connect"
            tryRefresh(candidates.dropFirst(), lastError: RedisClusterError("\(next.host):\(next.port): \(why)"))
        }
    }

    private func finishRefresh(_ result: Result<Void, RedisClusterError>) {
        refreshing = false
        if case .failure(let e) = result {
            metrics.refreshesFailed.add()
            onTopologyProblem(e.description)
        }
        let waiters = refreshWaiters
        refreshWaiters = []
        reconcileSubscriptions()
        for w in waiters { w(result) }
        if refreshAgain {
            refreshAgain = false
            refresh()
        }
    }

    // MARK: - Commands

    /// Sends `command` to the primary of `slot`, following redirects; `completion` gets the final reply, or
    /// nil when no node could be asked or the connection was lost with the command (outcome unknown).
    func send(_ command: RedisCommand, slot: Int, _ completion: @escaping (RedisReply?) -> Void) {
        guard let node = map?.primary(ofSlot: slot) else {
            // No owner known: one refresh, then one try.
            refresh { [self] _ in
                guard let owner = map?.primary(ofSlot: slot) else { return completion(nil) }
                dispatch(command, host: owner.host, port: owner.port, asking: false, hops: 0, completion)
            }
            return
        }
        dispatch(command, host: node.host, port: node.port, asking: false, hops: 0, completion)
    }

    func dispatch(_ command: RedisCommand, host: String, port: Int, asking: Bool, hops: Int, _ completion: @escaping (RedisReply?) -> Void) {
        if resolver.needsLookup(host) {
            return resolver.resolve(host) { [self] in dispatch(command, host: host, port: port, asking: asking, hops: hops, completion) }
        }
        guard let conn = connection(host: host, port: port, subscriber: false) else { return completion(nil) }
        if asking { conn.send(RedisCommand(["ASKING"])) { _ in } }
        let sent = conn.send(command) { [self] reply in
            guard let reply, let e = reply.errorMessage, hops < Self.maxRedirects else { return completion(reply) }
            if e.hasPrefix("TRYAGAIN") { return tryAgainLater(command, host: host, port: port, asking: asking, hops: hops, completion) }
            guard let redirect = RedisRedirect(error: e) else { return completion(reply) }
            redirects += 1
            switch redirect {
            case .moved(let slot, let h, let p):
                metrics.movedRedirects.add()
                let target = h.isEmpty ? host : h
                map?.move(slot: slot, to: target, port: p)
                refresh()
                dispatch(command, host: target, port: p, asking: false, hops: hops + 1, completion)
            case .ask(_, let h, let p):
                metrics.askRedirects.add()
                dispatch(command, host: h.isEmpty ? host : h, port: p, asking: true, hops: hops + 1, completion)
            }
        }
        if sent { watchForStall(conn) } else { completion(nil) }
    }

    // MARK: - Sharded subscriptions

    /// Wants `channel` (hashing to `slot`) from now on: subscribed on its owner now and after every change.
    func ssubscribe(_ channel: String, slot: Int) {
        wanted[channel] = slot
        reconcileSubscriptions()
    }

    /// No longer wants `channel`.
    func sunsubscribe(_ channel: String) {
        wanted[channel] = nil
        subscribedBefore.remove(channel)
        if let address = subscribedOn.removeValue(forKey: channel) {
            subscriberConnections[address]?.sunsubscribe([channel])
        }
    }

    /// Subscribes every wanted channel not subscribed on its slot's current owner (batched per node).
    private func reconcileSubscriptions() {
        guard let map else { return }
        var batches: [String: (host: String, port: Int, channels: [String])] = [:]
        for (channel, slot) in wanted {
            guard let owner = map.primary(ofSlot: slot) else { continue }
            let address = "\(owner.host):\(owner.port)"
            if let current = subscribedOn[channel] {
                if current == address { continue }
                // The slot moved: leave the old node (if still connected) and report the gap.
                subscriberConnections[current]?.sunsubscribe([channel])
                subscribedOn[channel] = nil
                onSubscriptionLost(channel)
            }
            batches[address, default: (owner.host, owner.port, [])].channels.append(channel)
        }
        for (address, b) in batches {
            if resolver.needsLookup(b.host) {
                resolver.resolve(b.host) { [self] in reconcileSubscriptions() }
                continue
            }
            guard let conn = connection(host: b.host, port: b.port, subscriber: true) else { continue }
            // Redis takes one slot per SSUBSCRIBE: one command per channel.
            for ch in b.channels where conn.ssubscribe([ch]) {
                subscribedOn[ch] = address
                if !subscribedBefore.insert(ch).inserted { metrics.resubscribes.add() }
            }
        }
    }

    // MARK: - Connections

    private func connection(host: String, port: Int, subscriber: Bool) -> RedisConnection? {
        let address = "\(host):\(port)"
        if let c = subscriber ? subscriberConnections[address] : commandConnections[address], c.isOpen { return c }
        guard let ip = resolver.address(of: host) else { return nil }
        let transport = makeTransport?(tlsName(host: host, port: port)) ?? { _ in PlainTransport.shared }
        let opened = RedisConnection.open(
            host: ip, port: port, context: context, role: subscriber ? "shard-sub \(address)" : "shard \(address)", makeTransport: transport)
        guard case .success(let c) = opened else {
            if case .failure(let e) = opened { connectionFailed(address, host: host, reason: e.description) }
            return nil
        }
        metrics.nodeConnected(address)
        c.delegate = self
        for step in handshake {
            c.send(step) { [weak self, weak c] reply in
                guard let e = reply?.errorMessage else { return }
                self?.handshakeRefused(address, error: e)
                c?.close()
            }
        }
        if subscriber { subscriberConnections[address] = c } else { commandConnections[address] = c }
        return c
    }

    private func address(of conn: RedisConnection) -> String? {
        subscriberConnections.first { $0.value === conn }?.key ?? commandConnections.first { $0.value === conn }?.key
    }

    func redisConnectionClosed(_ connection: RedisConnection, reason: String) {
        guard let address = address(of: connection) else { return }
        connectionFailed(address, host: String(address[..<(address.lastIndex(of: ":") ?? address.endIndex)]), reason: reason)
        if subscriberConnections[address] === connection {
            subscriberConnections[address] = nil
            let lost = subscribedOn.filter { $0.value == address }.map(\.key)
            for ch in lost {
                subscribedOn[ch] = nil
                onSubscriptionLost(ch)
            }
            if !lost.isEmpty {
                // The node may be gone for good (failover): ask the cluster where the slots live now.
                _ = loop.runAfter(milliseconds: 100) { [weak self] in self?.refresh() }
            }
        } else if commandConnections[address] === connection {
            commandConnections[address] = nil
        }
    }

    func redisConnection(_ connection: RedisConnection, pushed reply: UnsafePointer<redisReply>) {
        let r = reply.pointee
        // A 12-byte kind starting with "s": `sunsubscribe`.
        if r.type == REDIS_REPLY_ARRAY, r.elements >= 2, let kind = r.element[0], let ch = r.element[1],
            kind.pointee.len == 12, let k = kind.pointee.str, k[0] == 0x73
        {
            let channel = String(decoding: UnsafeRawBufferPointer(start: ch.pointee.str, count: ch.pointee.len), as: UTF8.self)
            if wanted[channel] != nil, let address = address(of: connection), subscribedOn[channel] == address {
                // Not asked for: the server dropped it (slot migrated, node demoted). Find the new owner.
                subscribedOn[channel] = nil
                onSubscriptionLost(channel)
                refresh()
                return
            }
        }
        onPush(reply)
    }

    func redisConnection(_ connection: RedisConnection, subscriptionRefused error: String) {
        // MOVED (or CLUSTERDOWN) for an SSUBSCRIBE: the map is stale. Which channel is not said: re-check all
        // of this node's after a refresh.
        guard let address = address(of: connection) else { return }
        if case .moved(let slot, let h, let p)? = RedisRedirect(error: error) {
            map?.move(slot: slot, to: h.isEmpty ? String(address.split(separator: ":")[0]) : h, port: p)
        }
        for (ch, a) in subscribedOn where a == address { subscribedOn[ch] = nil }
        refresh()
    }
}
