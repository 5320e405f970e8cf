import CHiredis
import Runtime

/// The two connections' handshakes and what happens when they come and go.
///
/// - commands: `AUTH` (when the URL has credentials), `SELECT` (database ≠ 0), `CLIENT SETNAME
///   switchboard-cmd-{node}`, `SCRIPT LOAD` of every script; ready when all answered without error.
/// - subscriber: `AUTH`, `CLIENT SETNAME switchboard-sub-{node}`; ready when both answered; then every
///   wanted channel is subscribed again (the control channels and each room with members). No regular
///   command is ever sent after the first SUBSCRIBE (RESP2 subscribed mode; `RedisPipeline` reads push-shaped
///   answers there as pushes).
extension RedisBus {
    func wireCommands() {
        commands.onOpen = { [unowned self] conn in
            var steps = authCommands()
            if configuration.endpoint.database != 0 { steps.append(RedisCommand(["SELECT", String(configuration.endpoint.database)])) }
            steps.append(RedisCommand(["CLIENT", "SETNAME", clientName("cmd")]))
            let firstScript = steps.count
            for s in RedisScripts.all { steps.append(RedisCommand(["SCRIPT", "LOAD", s.source])) }
            runHandshake(steps, on: conn, link: commands) { [unowned self] replies in
                for (i, s) in RedisScripts.all.enumerated() {
                    if let sha = replies[firstScript + i].text { scriptSHAs[s.name] = sha }
                }
            }
        }
        commands.onReady = { [unowned self] in
            metrics.commandsUp.set(1)
            updateHealth { $0.commandsReady = true }
            logger(.info, "redis commands connection ready", [("redis", .string(configuration.endpoint.description))])
            // A Redis restart without persistence lost our presence entries and registry key: rewrite them.
            presenceTable.markAllDirty()
            announceOnNextHeartbeat = "node-up"
            sendHeartbeat()
            scheduleTickFlush()
            for (room, r) in rooms where r.delivery.phase == .backfillPending { startBackfill(room: room) }
            updateState()
        }
        commands.onFailure = { [unowned self] reason, wasReady, failures, delay in
            metrics.commandsUp.set(0)
            updateHealth {
                $0.commandsReady = false; $0.lastError = "commands: \(reason)"
            }
            logAttempt("commands", reason: reason, wasReady: wasReady, failures: failures, delay: delay)
            updateState()
        }
        commands.onReconnectAttempt = { [unowned self] in metrics.commandReconnects.add() }
    }

    func wireSubscriber() {
        subscriber.onOpen = { [unowned self] conn in
            var steps = authCommands()
            steps.append(RedisCommand(["CLIENT", "SETNAME", clientName("sub")]))
            runHandshake(steps, on: conn, link: subscriber) { _ in }
        }
        subscriber.onReady = { [unowned self] in
            metrics.subscriberUp.set(1)
            updateHealth {
                $0.subscriberReady = true; $0.canaryHealthy = true
            }
            logger(.info, "redis subscriber connection ready", [("rooms", .int(rooms.count))])
            canary.reset()
            canaryHealthy = true
            confirmedRoomChannels = 0
            subscriptions.connectionReady()
            flushSubscriptions()
        }
        subscriber.onFailure = { [unowned self] reason, wasReady, failures, delay in
            metrics.subscriberUp.set(0)
            updateHealth {
                $0.subscriberReady = false; $0.lastError = "subscriber: \(reason)"
            }
            logAttempt("subscriber", reason: reason, wasReady: wasReady, failures: failures, delay: delay)
            subscriptions.connectionLost()
            confirmedRoomChannels = 0
            metrics.subscribedRooms.set(0)
            for r in rooms.values { r.delivery.subscriptionLost() }
            cancelCanaryCheck?()
            cancelCanaryCheck = nil
            canary.reset()
            updateState()
        }
        subscriber.onReconnectAttempt = { [unowned self] in metrics.subscriberReconnects.add() }
        subscriber.onPush = { [unowned self] reply in handlePush(reply) }
    }

    func authCommands() -> [RedisCommand] {
        let ep = configuration.endpoint
        guard let password = ep.password else { return [] }
        if let user = ep.username { return [RedisCommand(["AUTH", user, password])] }
        return [RedisCommand(["AUTH", password])]
    }

    /// `switchboard-{kind}-{node}` with characters Redis rejects in client names replaced by `_`.
    func clientName(_ kind: String) -> String {
        let safe = String(decoding: configuration.nodeID.utf8.map { $0 > 0x20 && $0 < 0x7F ? $0 : UInt8(ascii: "_") }, as: UTF8.self)
        return "switchboard-\(kind)-\(safe)"
    }

    /// Pipelines `steps` on `conn`; the link becomes ready when all answered without error, else it fails
    /// (and reconnects with backoff).
    func runHandshake(_ steps: [RedisCommand], on conn: RedisAsyncConnection, link: RedisLink, done: @escaping ([RedisReply]) -> Void) {
        guard !steps.isEmpty else {
            done([])
            link.handshakeSucceeded(conn)
            return
        }
        var replies: [RedisReply] = []
        var failed = false
        for step in steps {
            let sent = conn.send(step) { [unowned link] reply in
                guard !failed else { return }
                guard let reply else { failed = true; return }  // connection lost: the link already knows
                if let e = reply.errorMessage {
                    failed = true
                    link.fail(conn, reason: "\(step.name) failed: \(e)")
                    return
                }
                replies.append(reply)
                if replies.count == steps.count {
                    done(replies)
                    link.handshakeSucceeded(conn)
                }
            }
            if !sent {
                link.fail(conn, reason: "could not queue \(step.name)")
                return
            }
        }
    }

    /// The attempt log: failures 1...N in a row, then every N-th (`attemptLogEvery`, `--redis-attempt-log`).
    func logAttempt(_ role: String, reason: String, wasReady: Bool, failures: Int, delay: Int) {
        let n = configuration.attemptLogEvery
        guard failures <= n || failures % n == 0 else { return }
        let msg = wasReady ? "redis \(role) connection lost" : "redis \(role) connection attempt failed"
        logger(
            .warn, msg,
            [
                ("error", .string(reason)), ("attempt", .int(failures)), ("retry_in_ms", .int(delay)),
                ("redis", .string(configuration.endpoint.description))
            ])
    }
}
