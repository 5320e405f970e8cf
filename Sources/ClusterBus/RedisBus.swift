import CHiredis
import Glibc
import Protocol
import Runtime
import Synchronization

/// The cluster bus over Redis: rooms span every node connected to the same Redis (and prefix), in one
/// offset order, with history for resume, presence, a node registry and an end-to-end canary.
///
/// Shape (DESIGN.md, issue 3):
/// - Runs on its own `EventLoop` (the gateway's dedicated "bus" loop): two Redis connections (`RedisConnection`:
///   our sockets, hiredis's reader as the RESP parser),
///   *commands* (scripts, presence, registry, canary publish) and *subscriber* (room channels, `{prefix}ctl`,
///   the node's own control channel). No blocking Redis call on any loop; every public method is
///   thread-safe and hops onto the bus loop.
/// - Publishing is `EVALSHA` of `RedisScripts.publish` (`XADD` + trim + `PUBLISH` in one atomic step).
///   Members, the publisher's node included, get messages only from the subscription, so every member on
///   every node sees one order per room. A message is decoded once per node and handed to the delegate
///   (the hub), which frames it once and fans it out.
/// - A node subscribes to `{prefix}room:{room}` while it has members there (`subscribe`/`unsubscribe` from
///   the hub), batched per loop tick; a node without members gets none of the room's traffic.
/// - Redis outages: each connection reconnects with exponential backoff and full jitter
///   (`RedisConnectionMachine`); the subscriber resubscribes everything still wanted and back-fills each
///   room from its last delivered offset (`RedisRoomDelivery`). While down, `publish`, `join` and
///   `presence` fail at once with `BusError.unavailable`: never a silent drop. A publish that was handed to
///   Redis and whose answer was lost with the connection fails with `BusError.unknown` (it may have been
///   stored); its idempotency key makes the retry safe (`RedisScripts.publish`).
/// - `state` is `.up` only while both connections are ready, the control channels are confirmed and the
///   last canary came back in time (`RedisCanary`); a late canary forces a reconnect of both connections.
///
/// One object carries every role of `ClusterServices` (they share the two connections); callers get it
/// through `ClusterServices.redis(_:)` and see only the roles.
///
/// Threading: loop-confined state below the `// Loop-confined` mark; `state`, `health` and `metrics` are
/// readable from any thread.
public final class RedisBus: RoomBus, PresenceBus, NodeRegistry, AnalyticsBus, BusLifecycle, ControlBus, HistoryReader, @unchecked Sendable {
    public let configuration: RedisBusConfiguration
    /// Counters and histograms for `/metrics`.
    public let metrics = RedisBusMetrics()
    let loop: EventLoop
    let keys: RedisKeys
    let logger: RedisBusLogger
    private let upFlag = Atomic<Bool>(false)
    private let healthBox = Lock(RedisBusHealth())
    private let nodeInfoProvider = Lock<(@Sendable () -> NodeInfo)?>(nil)
    private let startedAtMilliseconds = wallClockMilliseconds()

    // Loop-confined.
    var delegate: BusDelegate?
    /// Created in `init`, started by `start(delegate:)` (never nil; implicitly unwrapped for older callers).
    var commands: RedisLink!
    var subscriber: RedisLink!
    var started = false
    var subscriptions = RedisSubscriptions()
    /// Rooms the hub subscribed (members on this node), with their delivery order and queued joins.
    var rooms: [String: RedisRoomState] = [:]
    var presenceTable = RedisPresenceTable()
    var canary: RedisCanary
    var canaryHealthy = true
    var cancelCanaryCheck: (() -> Void)?
    /// SHA-1 per script name, from `SCRIPT LOAD` (stable: the same source always has the same SHA).
    var scriptSHAs: [String: String] = [:]
    /// Analytics commands (budget checks and XADDs) sent and not yet answered (bus loop only): past
    /// `RedisBus.maxAnalyticsInFlight`, events are refused rather than queued without bound.
    var analyticsInFlight = 0
    /// Cap on `analyticsInFlight`.
    static let maxAnalyticsInFlight = 10_000
    var reportedUp = false
    var stopping = false
    var tickFlushScheduled = false
    var announceOnNextHeartbeat: String? = "node-up"
    var announcedDraining = false
    /// Duplicate `--node-id` detection from the heartbeat's answers.
    var nodeIDWatch = RedisNodeIDWatch()
    /// Set by `announceDraining()`: the registry says draining from now on.
    var drainingRequested = false
    var cancelHeartbeat: (() -> Void)?
    /// Room channels Redis confirmed on the current subscriber connection.
    var confirmedRoomChannels = 0
    var malformedLogged = 0
    /// Server API commands this node sent and whose answers it collects, and its handler (RedisBus+Control.swift).
    let control = RedisControlExchange()

    /// - Parameters:
    ///   - loop: the bus loop (a dedicated gateway `EventLoop`, already running).
    ///   - configuration: endpoint, prefix, node id, history size, timings.
    ///   - logger: where connection events go (called on the bus loop).
    public init(loop: EventLoop, configuration: RedisBusConfiguration, logger: @escaping RedisBusLogger = { _, _, _ in }) {
        self.loop = loop
        self.configuration = configuration
        self.keys = RedisKeys(prefix: configuration.prefix, nodeID: configuration.nodeID)
        self.logger = logger
        self.canary = RedisCanary(timeoutMilliseconds: configuration.canaryTimeoutMilliseconds)
        let clock = { monotonicMilliseconds() }
        let jitter = { Double.random(in: 0..<1) }
        commands = RedisLink(
            role: "commands", loop: loop, endpoint: configuration.endpoint, backoff: configuration.backoff,
            connectTimeoutMilliseconds: configuration.connectTimeoutMilliseconds, clock: clock, jitter: jitter)
        subscriber = RedisLink(
            role: "subscriber", loop: loop, endpoint: configuration.endpoint, backoff: configuration.backoff,
            connectTimeoutMilliseconds: configuration.connectTimeoutMilliseconds, clock: clock, jitter: jitter)
        if configuration.endpoint.tls { configureTLS() }
    }

    /// Supplies what the registry key advertises (address, connection count, draining); read every heartbeat
    /// on the bus loop, so it must be cheap and non-blocking.
    public func setNodeInfoProvider(_ provider: @escaping @Sendable () -> NodeInfo) {
        nodeInfoProvider.withLock { $0 = provider }
    }

    /// The bus's connection and canary health (any thread), for `/ready`.
    public var health: RedisBusHealth { healthBox.withLock { $0 } }

    func updateHealth(_ body: (inout RedisBusHealth) -> Void) { healthBox.withLock { body(&$0) } }

    func nodeInfo() -> NodeInfo {
        var info = nodeInfoProvider.withLock { $0 }?() ?? NodeInfo()
        if info.startedAtMilliseconds == 0 { info.startedAtMilliseconds = startedAtMilliseconds }
        if drainingRequested { info.draining = true }
        return info
    }

    /// Runs `body` on the bus loop (inline when already there).
    func onLoop(_ body: @escaping @Sendable () -> Void) {
        if loop.inLoop { body() } else { loop.execute(body) }
    }

    // MARK: - BusLifecycle

    public var state: BusState { upFlag.load(ordering: .relaxed) ? .up : .down }

    /// Also sets SIGPIPE to ignored for the process: the connections write with writev(2), and a write to a Redis
    /// that just died must come back as EPIPE (handled as a lost connection), not end the process.
    public func start(delegate: BusDelegate) {
        _ = signal(SIGPIPE, SIG_IGN)
        onLoop { [self] in
            guard !started, !stopping else { return }
            started = true
            self.delegate = delegate
            wireCommands()
            wireSubscriber()
            subscriptions.want(keys.controlChannel)
            subscriptions.want(keys.ownControlChannel)
            subscriptions.want(keys.apiChannel)
            logger(.info, "redis bus starting", [("redis", .string(configuration.endpoint.description)), ("prefix", .string(configuration.prefix))])
            commands.start()
            subscriber.start()
            scheduleHeartbeat()
        }
    }

    public func shutdown(completion: @escaping @Sendable () -> Void) {
        onLoop { [self] in
            guard !stopping, started else {
                stopping = true
                completion()
                return
            }
            stopping = true
            cancelHeartbeat?()
            cancelCanaryCheck?()
            updateState()
            var done = false
            let finish = { [self] in
                guard !done else { return }
                done = true
                subscriber.stop()
                commands.stop()
                metrics.commandsUp.set(0)
                metrics.subscriberUp.set(0)
                logger(.info, "redis bus stopped", [])
                completion()
            }
            // Remove our registry key and presence entries and announce node-down, then close.
            if commands.isReady, let conn = commands.connection, let sha = scriptSHAs[RedisScripts.leave.name] {
                runDrainSlot(mode: "release", maxDraining: 0, ttlMilliseconds: 0) { _ in }
                var cmd = RedisCommand("EVALSHA", argumentCount: 6)
                cmd.append(sha); cmd.append("1"); cmd.append(keys.nodes); cmd.append(keys.prefix); cmd.append(keys.nodeID)
                if conn.send(cmd, { _ in finish() }) {
                    _ = loop.runAfter(milliseconds: 1000) { finish() }
                    return
                }
            }
            finish()
        }
    }

    public func subscribe(room: String) {
        onLoop { [self] in
            if rooms[room] == nil { rooms[room] = RedisRoomState() }
            if subscriptions.want(keys.roomChannel(room)) { scheduleTickFlush() }
        }
    }

    public func unsubscribe(room: String) {
        onLoop { [self] in
            if let r = rooms.removeValue(forKey: room) {
                r.failPendingJoins(.unavailable("left the room"))
            }
            if subscriptions.unwant(keys.roomChannel(room)) { scheduleTickFlush() }
        }
    }

    public func publish(
        room: String, data: JSONFragment, idempotencyKey: String?,
        completion: @escaping @Sendable (Result<StreamOffset, BusError>) -> Void
    ) {
        if let key = idempotencyKey, key.utf8.count > maxIdempotencyKeyBytes {
            completion(.failure(.invalid("idempotency key longer than \(maxIdempotencyKeyBytes) bytes")))
            return
        }
        let started = monotonicMicroseconds()
        onLoop { [self] in
            let refused: @Sendable (String) -> Void = { [metrics] why in
                metrics.publishFailures.add()
                completion(.failure(.unavailable(why)))
            }
            guard reportedUp, let conn = commands.connection, let sha = scriptSHAs[RedisScripts.publish.name] else {
                return refused("the cluster bus is down (Redis unreachable)")
            }
            let window = configuration.idempotencyWindowMilliseconds
            let key = window > 0 ? idempotencyKey : nil
            let build = { [keys, configuration] (sha: String) -> RedisCommand in
                let capacity = data.bytes.count + 4 * room.utf8.count + 4 * keys.prefix.utf8.count + (key?.utf8.count ?? 0) + 96
                var cmd = RedisCommand("EVALSHA", argumentCount: key == nil ? 9 : 11, capacity: capacity)
                cmd.append(sha)
                cmd.append(key == nil ? "2" : "3")
                cmd.append(keys.history(room))
                cmd.append(keys.meta(room))
                if let key { cmd.append(keys.idempotency(room, key: key)) }
                cmd.append(keys.roomChannel(room))
                cmd.append(data.bytes)
                cmd.append(configuration.historySize)
                cmd.append(configuration.historyTTLMilliseconds)
                if key != nil { cmd.append(window) }
                return cmd
            }
            evalScript(
                RedisScripts.publish, on: conn, sha: sha, build,
                notSent: {
                    // Never written to the connection: nothing can have been stored.
                    refused("the Redis connection could not take the publish")
                }
            ) { [self] reply in
                guard let reply else {
                    // The command was handed to Redis (queued or written) and the connection went
                    // away before the answer: Redis may still run it (a stalled server reads it on resume).
                    metrics.publishUnknown.add()
                    completion(.failure(.unknown("the Redis connection was lost before the publish was answered")))
                    return
                }
                guard let (offset, repeated) = redisPublishedOffset(reply) else {
                    // An error reply: Redis refused the whole script (BUSY) or its first write (OOM, READONLY),
                    // so nothing was written; the commands after the XADD cannot fail on the arguments we send.
                    logger(.warn, "publish script failed", [("room", .string(room)), ("reply", .string(describe(reply)))])
                    return refused("Redis rejected the publish: \(describe(reply))")
                }
                if repeated { metrics.publishRepeats.add() } else { metrics.publishes.add() }
                metrics.publishLatency.observe(microseconds: Int(monotonicMicroseconds() &- started))
                completion(.success(offset))
            }
        }
    }

    public func join(room: String, since: StreamOffset?, completion: @escaping @Sendable (Result<JoinResult, BusError>) -> Void) {
        onLoop { [self] in
            guard reportedUp else {
                completion(.failure(.unavailable("the cluster bus is down (Redis unreachable)")))
                return
            }
            // Read the room's position only once its subscription is live, so no message falls between the
            // offset the member gets and the first message the subscription delivers.
            if let r = rooms[room], !subscriptions.isActive(keys.roomChannel(room)) {
                r.pendingJoins.append(RedisRoomState.PendingJoin(since: since, completion: completion))
                return
            }
            runJoin(room: room, since: since, completion: completion)
        }
    }

    public func setPresence(room: String, localCount: Int) {
        onLoop { [self] in
            if presenceTable.set(room: room, count: localCount) { scheduleTickFlush() }
        }
    }

    public func setPresenceUser(room: String, user: String, present: Bool) {
        onLoop { [self] in
            if presenceTable.setUser(room: room, user: user, present: present) { scheduleTickFlush() }
        }
    }

    public func presence(room: String, completion: @escaping @Sendable (Result<PresenceCount, BusError>) -> Void) {
        onLoop { [self] in
            guard commands.isReady, let conn = commands.connection, let sha = scriptSHAs[RedisScripts.presenceRead.name] else {
                completion(.failure(.unavailable("the cluster bus is down (Redis unreachable)")))
                return
            }
            let build = { [keys] (sha: String) -> RedisCommand in
                var cmd = RedisCommand("EVALSHA", argumentCount: 6, capacity: 2 * room.utf8.count + 2 * keys.prefix.utf8.count + 80)
                cmd.append(sha)
                cmd.append("1")
                cmd.append(keys.presence(room))
                cmd.append(keys.prefix)
                cmd.append(room)
                return cmd
            }
            evalScript(RedisScripts.presenceRead, on: conn, sha: sha, build) { reply in
                guard let items = reply?.array, items.count == 2, let connections = items[0].int, let users = items[1].int else {
                    completion(.failure(.unavailable("presence read failed")))
                    return
                }
                completion(.success(PresenceCount(connections: connections, users: users)))
            }
        }
    }

    // MARK: - State

    /// Recomputes `state` and tells the delegate when it changed. Pending joins fail when the bus goes down.
    func updateState() {
        let up =
            !stopping && commands.isReady && subscriber.isReady && canaryHealthy
            && subscriptions.isActive(keys.controlChannel) && subscriptions.isActive(keys.ownControlChannel)
        guard up != reportedUp else { return }
        reportedUp = up
        upFlag.store(up, ordering: .relaxed)
        logger(up ? .info : .warn, up ? "redis bus up" : "redis bus down", [])
        if !up {
            for r in rooms.values { r.failPendingJoins(.unavailable("the cluster bus is down (Redis unreachable)")) }
        }
        delegate?.busStateChanged(up ? .up : .down)
    }

    /// Runs the per-tick batch (SUBSCRIBE/UNSUBSCRIBE, presence writes) once at the end of this loop iteration.
    func scheduleTickFlush() {
        guard !tickFlushScheduled else { return }
        tickFlushScheduled = true
        loop.atTickEnd { [self] in
            tickFlushScheduled = false
            flushSubscriptions()
            flushPresence()
        }
    }

    // MARK: - Scripts

    /// `EVALSHA` with a transparent `NOSCRIPT` recovery: the script is loaded again and the command resent
    /// once. `build` makes the command for a SHA. `completion` gets the final reply (nil: connection lost).
    /// With `notSent`, a command that could not be queued at all calls `notSent` instead of `completion(nil)`
    /// (publish tells "never handed to Redis" from "answer lost").
    func evalScript(
        _ script: RedisScript, on conn: RedisAsyncConnection, sha: String, _ build: @escaping (String) -> RedisCommand,
        notSent: (() -> Void)? = nil, _ completion: @escaping (RedisReply?) -> Void
    ) {
        let notQueued = { if let notSent { notSent() } else { completion(nil) } }
        let sent = conn.send(build(sha)) { [self] reply in
            guard let e = reply?.errorMessage, e.hasPrefix("NOSCRIPT") else {
                completion(reply)
                return
            }
            logger(.warn, "script missing on the server, loading it again", [("script", .string(script.name))])
            _ = conn.send(RedisCommand(["SCRIPT", "LOAD", script.source])) { [self] loaded in
                if let newSHA = loaded?.text { scriptSHAs[script.name] = newSHA }
            }
            // The first attempt was refused with NOSCRIPT (not run): a resend that cannot be queued was never handed over.
            if !conn.send(build(scriptSHAs[script.name] ?? sha), completion) { notQueued() }
        }
        if !sent { notQueued() }
    }

    func describe(_ reply: RedisReply) -> String {
        switch reply {
        case .error(let e): return e
        case .status(let s): return s
        case .string(let b): return String(decoding: b.prefix(200), as: UTF8.self)
        case .integer(let i): return String(i)
        case .array(let a): return "array of \(a.count)"
        case .null: return "null"
        }
    }
}

/// Per-room state of the bus (loop-confined): delivery order and joins waiting for the subscription.
final class RedisRoomState {
    struct PendingJoin {
        let since: StreamOffset?
        let completion: @Sendable (Result<JoinResult, BusError>) -> Void
    }
    var delivery = RedisRoomDelivery()
    var pendingJoins: [PendingJoin] = []

    func failPendingJoins(_ error: BusError) {
        let waiting = pendingJoins
        pendingJoins = []
        for j in waiting { j.completion(.failure(error)) }
    }
}
