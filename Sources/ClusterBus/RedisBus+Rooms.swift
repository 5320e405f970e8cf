import CHiredis
import Protocol
import Runtime

/// Room traffic: the subscriber's pub/sub replies, per-tick SUBSCRIBE/UNSUBSCRIBE, joins and back-fills.
extension RedisBus {
    // MARK: - Subscriptions

    /// Sends the SUBSCRIBE/UNSUBSCRIBE batch the channel table has due (one command each).
    func flushSubscriptions() {
        guard subscriber.isReady, let conn = subscriber.connection, subscriptions.needsFlush else { return }
        let (sub, unsub) = subscriptions.flush()
        if !sub.isEmpty, !conn.subscribe(sub) { subscriber.fail(conn, reason: "could not queue SUBSCRIBE") }
        if !unsub.isEmpty, !conn.unsubscribe(unsub) { subscriber.fail(conn, reason: "could not queue UNSUBSCRIBE") }
    }

    /// A pub/sub reply: `["message", channel, payload]`, `["subscribe", channel, n]`, `["unsubscribe", channel, n]`.
    func handlePush(_ reply: UnsafePointer<redisReply>) {
        let r = reply.pointee
        guard r.type == REDIS_REPLY_ARRAY, r.elements >= 3, let kindPtr = r.element[0], let chPtr = r.element[1], let third = r.element[2],
            kindPtr.pointee.type == REDIS_REPLY_STRING, chPtr.pointee.type == REDIS_REPLY_STRING, let kind = kindPtr.pointee.str
        else { return }
        let channel = String(decoding: UnsafeRawBufferPointer(start: chPtr.pointee.str, count: chPtr.pointee.len), as: UTF8.self)
        switch (kindPtr.pointee.len, kind[0]) {
        case (7, 0x6D), (8, 0x73):  // "message", "smessage" (sharded pub/sub)
            let payload = UnsafeRawBufferPointer(start: third.pointee.str, count: third.pointee.len)
            handleMessage(channel: channel, payload: payload)
        case (9, 0x73), (10, 0x73):  // "subscribe", "ssubscribe"
            handleSubscribed(channel)
        case (11, 0x75), (12, 0x73):  // "unsubscribe", "sunsubscribe"
            handleUnsubscribed(channel)
        default:
            break
        }
    }

    private func handleMessage(channel: String, payload: UnsafeRawBufferPointer) {
        if let room = keys.room(ofChannel: channel) {
            metrics.messagesReceived.add()
            guard let r = rooms[room] else { return }  // left meanwhile: nobody here wants it
            guard let message = RedisRoomPayload.decode(room: room, payload: payload) else {
                metrics.malformedPayloads.add()
                if malformedLogged < 10 {
                    malformedLogged += 1
                    logger(
                        .warn, "dropped a room payload not in the publish script's shape (see docs/redis.md)",
                        [("room", .string(room)), ("bytes", .int(payload.count))])
                }
                return
            }
            deliver(r.delivery.live(message))
            // `live` mutated a copy-on-write struct inside a class: no copy, the class holds it.
        } else if channel == keys.ownControlChannel {
            if payload.starts(with: RedisControlExchange.replyTag) { handleControlReply(payload) } else { handleCanary(payload) }
        } else if channel == keys.apiChannel {
            handleControlCommand(payload)
        } else if channel == keys.controlChannel {
            let text = String(decoding: payload.prefix(1024), as: UTF8.self)
            logger(.info, "cluster announcement", [("event", .string(text))])
        }
    }

    private func handleSubscribed(_ channel: String) {
        let confirmation = subscriptions.subscribed(channel)
        guard let room = keys.room(ofChannel: channel) else {
            if confirmation == .active { updateState() }
            return
        }
        guard confirmation != .unexpected else { return }
        confirmedRoomChannels += 1
        metrics.subscribedRooms.set(confirmedRoomChannels)
        guard confirmation == .active, let r = rooms[room] else {
            scheduleTickFlush()  // no longer wanted: UNSUBSCRIBE at the end of this tick
            return
        }
        if r.delivery.subscriptionConfirmed() { startBackfill(room: room) }
        let joins = r.pendingJoins
        r.pendingJoins = []
        for j in joins { runJoin(room: room, since: j.since, completion: j.completion) }
    }

    private func handleUnsubscribed(_ channel: String) {
        let wasSubscribed = subscriptions.state(of: channel) != .unsubscribed
        if subscriptions.unsubscribed(channel) { scheduleTickFlush() }
        if wasSubscribed, keys.room(ofChannel: channel) != nil {
            confirmedRoomChannels = max(0, confirmedRoomChannels - 1)
            metrics.subscribedRooms.set(confirmedRoomChannels)
        }
    }

    /// Hands messages to the hub in order, once per node.
    func deliver(_ messages: [BusMessage]) {
        guard !messages.isEmpty, let delegate else { return }
        let now = wallClockMilliseconds()
        for m in messages {
            delegate.busDeliver(m)
            metrics.messagesDelivered.add()
            let lagMs = now >= m.publishedAtMilliseconds ? now - m.publishedAtMilliseconds : 0
            metrics.deliveryLatency.observe(microseconds: Int(lagMs) * 1000)
        }
    }

    // MARK: - Joins

    /// Runs the read script for a join: the room's latest offset and, with `since`, what followed it.
    func runJoin(room: String, since: StreamOffset?, completion: @escaping @Sendable (Result<JoinResult, BusError>) -> Void) {
        guard reportedUp, let conn = commands.connection, let sha = scriptSHAs[RedisScripts.read.name] else {
            completion(.failure(.unavailable("the cluster bus is down (Redis unreachable)")))
            return
        }
        evalScript(RedisScripts.read, on: conn, sha: sha, readCommand(room: room, since: since, mode: "join")) { [self] reply in
            guard let reply else {
                completion(.failure(.unavailable("connection to Redis lost during join")))
                return
            }
            guard let result = RedisReadResult(room: room, reply: reply) else {
                logger(.warn, "read script failed", [("room", .string(room)), ("reply", .string(describe(reply)))])
                completion(.failure(.unavailable("Redis rejected the join: \(describe(reply))")))
                return
            }
            rooms[room]?.delivery.joined(latest: result.latest)
            let recovered = since != nil && result.recovered
            completion(.success(JoinResult(offset: result.latest, recovered: recovered, replay: recovered ? result.entries : [])))
        }
    }

    func readCommand(room: String, since: StreamOffset?, mode: String) -> (String) -> RedisCommand {
        { [keys, configuration] sha in
            var cmd = RedisCommand("EVALSHA", argumentCount: 9, capacity: 2 * room.utf8.count + 112)
            cmd.append(sha)
            cmd.append("2")
            cmd.append(keys.history(room))
            cmd.append(keys.meta(room))
            cmd.append(since?.epoch ?? "")
            cmd.append(since?.entryID ?? "")
            cmd.append(mode)
            cmd.append(configuration.historyTTLMilliseconds)
            return cmd
        }
    }

    // MARK: - Back-fill

    /// Reads `room`'s history after its cursor and delivers what the subscriber outage kept from members,
    /// before the live messages that arrived meanwhile. Waits for the commands connection if it is down.
    func startBackfill(room: String) {
        guard let r = rooms[room], commands.isReady, let conn = commands.connection, let sha = scriptSHAs[RedisScripts.read.name],
            let (since, token) = r.delivery.beginBackfill()
        else { return }
        evalScript(RedisScripts.read, on: conn, sha: sha, readCommand(room: room, since: since, mode: "backfill")) { [self] reply in
            guard let r = rooms[room] else { return }
            guard let reply, let result = RedisReadResult(room: room, reply: reply) else {
                r.delivery.backfillFailed(token: token)
                if let reply { logger(.warn, "back-fill read failed", [("room", .string(room)), ("reply", .string(describe(reply)))]) }
                if commands.isReady { startBackfill(room: room) }
                return
            }
            if result.epoch != since.epoch {
                // An empty history that expired (or a new room) is no loss; one this node had delivered from may be.
                let hadMessages = since.milliseconds != 0 || since.sequence != 0
                logger(
                    hadMessages ? .warn : .info,
                    hadMessages ? "room history was reset (new epoch): members may have missed messages" : "room history started again (new epoch)",
                    [("room", .string(room)), ("since", .string(since.description))])
            } else if !result.recovered {
                metrics.backfillGaps.add()
                logger(
                    .warn, "history trimmed past this node's last delivered offset: members missed messages",
                    [("room", .string(room)), ("since", .string(since.description))])
            }
            let out = r.delivery.backfilled(token: token, entries: result.entries)
            metrics.backfilledMessages.add(out.count)
            if !out.isEmpty {
                logger(
                    .info, "back-filled room after resubscribe",
                    [
                        ("room", .string(room)), ("messages", .int(out.count)),
                        ("since", .string(since.description))
                    ])
            }
            deliver(out)
        }
    }

    // MARK: - Presence

    /// Writes this tick's presence changes (one script call per changed room).
    func flushPresence() {
        guard commands.isReady, let conn = commands.connection, let sha = scriptSHAs[RedisScripts.presence.name], presenceTable.needsFlush else { return }
        for write in presenceTable.flush() {
            let room = write.room
            let build = { [keys] (sha: String) -> RedisCommand in
                let users = write.added + write.removed
                var cmd = RedisCommand(
                    "EVALSHA", argumentCount: 11 + users.count,
                    capacity: 3 * room.utf8.count + users.reduce(0) { $0 + $1.utf8.count + 16 } + 160)
                cmd.append(sha)
                cmd.append("3")
                cmd.append(keys.presence(room))
                cmd.append(keys.nodeRooms(keys.nodeID))
                cmd.append(keys.presenceUsers(room, node: keys.nodeID))
                cmd.append(keys.nodeID)
                cmd.append(write.count)
                cmd.append(room)
                cmd.append(write.replaceUsers ? "1" : "0")
                cmd.append(write.added.count)
                for u in users { cmd.append(u) }
                return cmd
            }
            evalScript(RedisScripts.presence, on: conn, sha: sha, build) { [self] reply in
                if reply == nil {
                    // Lost with the connection: written again once the commands connection is back.
                    presenceTable.markDirty(room)
                    return
                }
                if let e = reply?.errorMessage {
                    // Refused (OOM, READONLY, BUSY): written again, in full, on the next heartbeat.
                    presenceTable.markDirty(room)
                    logger(.warn, "presence write failed", [("room", .string(room)), ("error", .string(e))])
                }
            }
        }
    }
}
