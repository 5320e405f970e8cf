import CHiredis
import Protocol
import Runtime
import Synchronization

/// Every bus role over Redis Cluster. Rooms: each room lives on the shard that
/// owns its hash tag (`RedisClusterKeys`), is published with `RedisScripts.publishSharded` (`XADD` +
/// `SPUBLISH` in one slot) and received with `SSUBSCRIBE` on that shard (`RedisClusterRouter`).
///
/// Ordering and gaps work as with one Redis (`RedisRoomDelivery`): when a room's subscription is lost
/// (slot migrated, primary failed over, connection dropped) and confirmed again on the new owner, the room
/// is back-filled from its history after the last delivered offset, then live messages continue; nothing
/// is delivered twice.
///
/// `state` is `.up` while the last slot map serves some slot and the cluster says `cluster_state:ok`; rooms on
/// slots without a live primary are refused with `unavailable` meanwhile (`RedisClusterBus+Operations.swift`).
/// Presence is stored on each room's slot (`RedisClusterBus+Presence.swift`); the registry, dead-node clean-up
/// and drain semaphore (`+Registry`) and the server API's commands (`+Control`, sharded channels) on the
/// `{nodes}` slot; session records and analytics on their keys' own slots (`+Sessions`).
/// `ClusterServices.redisCluster` hands one bus out as every role.
/// Thread-safe like `RedisBus`: every public method hops onto `loop`.
public final class RedisClusterBus: RoomBus, BusLifecycle, @unchecked Sendable {
    let loop: EventLoop
    let keys: RedisClusterKeys
    let historySize: Int
    let historyTTLMilliseconds: Int
    let idempotencyWindowMilliseconds: Int
    private let upFlag = Atomic<Bool>(false)
    let log: RedisBusLogger

    // Loop-confined.
    var router: RedisClusterRouter
    /// This node's presence per room, written to each room's slot (`RedisClusterBus+Presence.swift`).
    var presenceTable = RedisPresenceTable()
    var presenceFlushScheduled = false
    private var delegate: BusDelegate?
    private var rooms: [String: RedisRoomState] = [:]
    private var confirmed: Set<String> = []
    private var shas: [String: String] = [:]
    private var cancelRefresh: (() -> Void)?
    var stopped = false
    /// Registry, heartbeat and drain state (`RedisClusterBus+Registry.swift`).
    var node: RedisClusterNodeState
    let nodeInfoProvider = Lock<(@Sendable () -> NodeInfo)?>(nil)
    let startedAtMilliseconds = wallClockMilliseconds()
    /// Server API commands in flight and this node's handler (`RedisClusterBus+Control.swift`).
    let control = RedisControlExchange()
    /// Analytics writes sent and not yet answered (`RedisClusterBus+Sessions.swift`).
    var analyticsInFlight = 0
    /// Messages handed to the delegate, back-filled messages among them (tests and metrics).
    public let delivered = Counter()
    public let backfilled = Counter()
    /// Redirects, refreshes, resubscribes, per-node connections and the slot-map health (`/metrics`, `/ready`).
    public let clusterMetrics = RedisClusterMetrics()

    /// - Parameters: `seeds`: cluster nodes to ask for the slot map (IP addresses, or DNS names looked up off the
    ///   loop by `RedisHostResolver`); `username`/`password`: sent with `AUTH` first on every connection (nil:
    ///   none); `prefix` must not contain `{`; `heartbeatIntervalMilliseconds` (default 2 s) and
    ///   `nodeTTLMilliseconds` (default 6 s): the registry key's refresh and lifetime, as `--heartbeat-interval`
    ///   / `--node-ttl` with one Redis.
    public init(
        loop: EventLoop, seeds: [(host: String, port: Int)], username: String? = nil, password: String? = nil,
        prefix: String = "sb:", nodeID: String,
        historySize: Int = 1000, historyTTLMilliseconds: Int = 86_400_000, idempotencyWindowMilliseconds: Int = 120_000,
        heartbeatIntervalMilliseconds: Int = 2000, nodeTTLMilliseconds: Int = 6000,
        logger: @escaping RedisBusLogger = { _, _, _ in }
    ) {
        self.node = RedisClusterNodeState(
            heartbeatIntervalMilliseconds: max(1, heartbeatIntervalMilliseconds), nodeTTLMilliseconds: max(1, nodeTTLMilliseconds))
        self.loop = loop
        self.keys = RedisClusterKeys(prefix: prefix, nodeID: nodeID)
        self.historySize = historySize
        self.historyTTLMilliseconds = historyTTLMilliseconds
        self.idempotencyWindowMilliseconds = idempotencyWindowMilliseconds
        self.log = logger
        self.router = RedisClusterRouter(loop: loop, seeds: seeds, metrics: clusterMetrics)
        router.log = logger
        if let password {
            router.handshake = [RedisCommand(username.map { ["AUTH", $0, password] } ?? ["AUTH", password])]
        }
    }

    public var state: BusState { upFlag.load(ordering: .relaxed) ? .up : .down }

    func onLoop(_ body: @escaping @Sendable () -> Void) {
        if loop.inLoop { body() } else { loop.execute(body) }
    }

    // MARK: - Lifecycle

    public func start(delegate: BusDelegate) {
        onLoop { [self] in
            guard self.delegate == nil, !stopped else { return }
            self.delegate = delegate
            router.onPush = { [unowned self] reply in handlePush(reply) }
            router.onSubscriptionLost = { [unowned self] channel in
                confirmed.remove(channel)
                if let room = keys.room(ofChannel: channel) { rooms[room]?.delivery.subscriptionLost() }
            }
            router.onTopologyProblem = { [unowned self] problem in refreshFailed(problem) }
            router.onRefreshed = { [unowned self] map in
                refreshed(map)
                if !node.registered { heartbeat() }
            }
            router.ssubscribe(keys.apiChannel, slot: RedisClusterKeys.nodesSlot)
            router.ssubscribe(keys.ownControlChannel, slot: RedisClusterKeys.nodesSlot)
            refreshPeriodically()
            scheduleHeartbeat()
        }
    }

    private func refreshPeriodically() {
        router.refresh()
        // Presence writes that failed (shard down, redirect lost) are retried here, in full.
        flushPresence()
        cancelRefresh = loop.runAfter(milliseconds: 2000) { [weak self] in
            guard let self, !self.stopped else { return }
            self.refreshPeriodically()
        }
    }

    func setUp(_ up: Bool) {
        guard up != upFlag.load(ordering: .relaxed) else { return }
        upFlag.store(up, ordering: .relaxed)
        delegate?.busStateChanged(up ? .up : .down)
    }

    public func shutdown(completion: @escaping @Sendable () -> Void) {
        onLoop { [self] in
            guard !stopped else { return completion() }
            cancelRefresh?()
            node.cancelHeartbeat?()
            // Presence and registry entries removed before the connections close.
            leaveCluster { [self] in
                stopped = true
                router.stop()
                setUp(false)
                completion()
            }
        }
    }

    // MARK: - Rooms

    public func subscribe(room: String) {
        onLoop { [self] in
            guard rooms[room] == nil else { return }
            rooms[room] = RedisRoomState()
            router.ssubscribe(keys.roomChannel(room), slot: keys.slot(ofRoom: room))
        }
    }

    public func unsubscribe(room: String) {
        onLoop { [self] in
            guard let r = rooms.removeValue(forKey: room) else { return }
            r.failPendingJoins(.unavailable("left the room"))
            confirmed.remove(keys.roomChannel(room))
            router.sunsubscribe(keys.roomChannel(room))
        }
    }

    public func publish(
        room: String, data: JSONFragment, idempotencyKey: String?,
        completion: @escaping @Sendable (Result<StreamOffset, BusError>) -> Void
    ) {
        onLoop { [self] in
            guard state == .up else { return completion(.failure(.unavailable("the Redis cluster is not reachable or serves no slot"))) }
            if let refusal = refusal(room: room) { return completion(.failure(refusal)) }
            let key = idempotencyWindowMilliseconds > 0 ? idempotencyKey : nil
            var args: [[UInt8]] = [Array(keys.history(room).utf8), Array(keys.meta(room).utf8)]
            if let key { args.append(Array(keys.idempotency(room, key: key).utf8)) }
            let keyCount = args.count
            args += [Array(keys.roomChannel(room).utf8), data.bytes, Array(String(historySize).utf8), Array(String(historyTTLMilliseconds).utf8)]
            if key != nil { args.append(Array(String(idempotencyWindowMilliseconds).utf8)) }
            eval(RedisScripts.publishSharded, keyCount: keyCount, args: args, slot: keys.slot(ofRoom: room)) { reply in
                guard let reply else { return completion(.failure(.unknown("the connection to the room's shard was lost before the answer"))) }
                guard let (offset, _) = redisPublishedOffset(reply) else {
                    return completion(.failure(.unavailable("Redis rejected the publish: \(reply.errorMessage ?? "unexpected answer")")))
                }
                completion(.success(offset))
            }
        }
    }

    public func join(room: String, since: StreamOffset?, completion: @escaping @Sendable (Result<JoinResult, BusError>) -> Void) {
        onLoop { [self] in
            guard state == .up else { return completion(.failure(.unavailable("the Redis cluster is not reachable or serves no slot"))) }
            if let refusal = refusal(room: room) { return completion(.failure(refusal)) }
            // As with one Redis: read the position only once the subscription is live.
            if let r = rooms[room], !confirmed.contains(keys.roomChannel(room)) {
                r.pendingJoins.append(RedisRoomState.PendingJoin(since: since, completion: completion))
                return
            }
            runJoin(room: room, since: since, completion: completion)
        }
    }

    private func runJoin(room: String, since: StreamOffset?, completion: @escaping @Sendable (Result<JoinResult, BusError>) -> Void) {
        read(room: room, since: since, mode: "join") { [self] reply in
            guard let reply else { return completion(.failure(.unavailable("connection to the room's shard lost during join"))) }
            guard let result = RedisReadResult(room: room, reply: reply) else {
                return completion(.failure(.unavailable("Redis rejected the join: \(reply.errorMessage ?? "unexpected answer")")))
            }
            rooms[room]?.delivery.joined(latest: result.latest)
            let recovered = since != nil && result.recovered
            completion(.success(JoinResult(offset: result.latest, recovered: recovered, replay: recovered ? result.entries : [])))
        }
    }

    private func read(room: String, since: StreamOffset?, mode: String, _ completion: @escaping (RedisReply?) -> Void) {
        let args: [[UInt8]] = [
            Array(keys.history(room).utf8), Array(keys.meta(room).utf8), Array((since?.epoch ?? "").utf8),
            Array((since?.entryID ?? "").utf8), Array(mode.utf8), Array(String(historyTTLMilliseconds).utf8)
        ]
        eval(RedisScripts.read, keyCount: 2, args: args, slot: keys.slot(ofRoom: room), completion)
    }

    /// `EVALSHA`, falling back to `EVAL` (which caches the script on that node) on `NOSCRIPT`: a promoted
    /// replica or a new shard may not have it.
    func eval(_ script: RedisScript, keyCount: Int, args: [[UInt8]], slot: Int, _ completion: @escaping (RedisReply?) -> Void) {
        func command(_ verb: String, _ first: String) -> RedisCommand {
            var cmd = RedisCommand(verb, argumentCount: 3 + args.count, capacity: args.reduce(first.utf8.count + 8) { $0 + $1.count })
            cmd.append(first)
            cmd.append(keyCount)
            for a in args { cmd.append(a) }
            return cmd
        }
        guard let sha = shas[script.name] else {
            return router.send(command("EVAL", script.source), slot: slot) { [self] reply in
                if reply?.errorMessage == nil, shas[script.name] == nil {
                    router.send(RedisCommand(["SCRIPT", "LOAD", script.source]), slot: slot) { [self] r in if let s = r?.text { shas[script.name] = s } }
                }
                completion(reply)
            }
        }
        router.send(command("EVALSHA", sha), slot: slot) { [self] reply in
            if let e = reply?.errorMessage, e.hasPrefix("NOSCRIPT") {
                return router.send(command("EVAL", script.source), slot: slot, completion)
            }
            completion(reply)
        }
    }

    // MARK: - Pushes and back-fill

    private func handlePush(_ reply: UnsafePointer<redisReply>) {
        let r = reply.pointee
        guard r.type == REDIS_REPLY_ARRAY, r.elements >= 3, let kind = r.element[0], let ch = r.element[1], let third = r.element[2],
            let k = kind.pointee.str
        else { return }
        let channel = String(decoding: UnsafeRawBufferPointer(start: ch.pointee.str, count: ch.pointee.len), as: UTF8.self)
        if kind.pointee.len == 8, channel.hasPrefix(keys.nodesPrefix) {
            return handleNodesMessage(channel: channel, payload: UnsafeRawBufferPointer(start: third.pointee.str, count: third.pointee.len))
        }
        guard let room = keys.room(ofChannel: channel), let state = rooms[room] else { return }
        switch (kind.pointee.len, k[0]) {
        case (8, 0x73):  // smessage
            let payload = UnsafeRawBufferPointer(start: third.pointee.str, count: third.pointee.len)
            guard let message = RedisRoomPayload.decode(room: room, payload: payload) else { return }
            deliver(state.delivery.live(message))
        case (10, 0x73):  // ssubscribe
            confirmed.insert(channel)
            if state.delivery.subscriptionConfirmed() { startBackfill(room: room) }
            let joins = state.pendingJoins
            state.pendingJoins = []
            for j in joins { runJoin(room: room, since: j.since, completion: j.completion) }
        default:
            break
        }
    }

    private func startBackfill(room: String) {
        guard let r = rooms[room], let (since, token) = r.delivery.beginBackfill() else { return }
        read(room: room, since: since, mode: "backfill") { [self] reply in
            guard let r = rooms[room] else { return }
            guard let reply, let result = RedisReadResult(room: room, reply: reply) else {
                r.delivery.backfillFailed(token: token)
                // The shard may be mid-failover: try again shortly.
                _ = loop.runAfter(milliseconds: 200) { [weak self] in self?.startBackfill(room: room) }
                return
            }
            let out = r.delivery.backfilled(token: token, entries: result.entries)
            backfilled.add(out.count)
            if !out.isEmpty {
                log(.info, "back-filled room after resubscribe (cluster)", [("room", .string(room)), ("messages", .int(out.count))])
            }
            deliver(out)
        }
    }

    private func deliver(_ messages: [BusMessage]) {
        guard let delegate else { return }
        for m in messages {
            delegate.busDeliver(m)
            delivered.add()
        }
    }
}
