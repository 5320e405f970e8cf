import Runtime

/// The server API's `ControlBus` and `HistoryReader` over Redis Cluster.
///
/// Commands and answers are the standalone ones (`RedisControlExchange`) on sharded channels of the
/// `{nodes}` slot: every node `SSUBSCRIBE`s `{prefix}{nodes}api` and its own `{prefix}{nodes}ctl:{id}` on
/// the shard that owns the slot, so `SPUBLISH {prefix}{nodes}api` answers how many nodes got the command
/// (all subscribers of a sharded channel are on its primary), which is how many answers to wait for.
/// Plain `PUBLISH` would not do: in a cluster it answers the receivers on one node only. The node list is
/// the registry (`SMEMBERS` + `MGET` on `{nodes}`); history reads go to the room's slot.
extension RedisClusterBus: ControlBus, HistoryReader {
    public func setControlHandler(_ handler: @escaping ControlHandler) { control.setHandler(handler) }

    public func sendControl(
        _ command: ControlCommand, timeoutMilliseconds: Int,
        completion: @escaping @Sendable (Result<ControlOutcome, BusError>) -> Void
    ) {
        onLoop { [self] in
            guard state == .up else { return completion(.failure(.unavailable("the Redis cluster is not serving every slot"))) }
            guard
                let (rid, cmd) = control.begin(
                    command, from: keys.nodeID, verb: "SPUBLISH", channel: keys.apiChannel, timeoutMilliseconds: timeoutMilliseconds,
                    loop: loop, completion: completion)
            else { return }
            router.send(cmd, slot: RedisClusterKeys.nodesSlot) { [self] reply in control.published(rid, receivers: reply?.int) }
        }
    }

    public func otherNodes(completion: @escaping @Sendable (Result<[ClusterNode], BusError>) -> Void) {
        onLoop { [self] in
            guard state == .up else { return completion(.failure(.unavailable("the Redis cluster is not serving every slot"))) }
            router.send(RedisCommand(["SMEMBERS", keys.nodes]), slot: RedisClusterKeys.nodesSlot) { [self] reply in
                guard let members = reply?.array else { return completion(.failure(.unavailable("node registry read failed"))) }
                let ids = members.compactMap(\.text).filter { $0 != keys.nodeID }.sorted()
                guard !ids.isEmpty else { return completion(.success([])) }
                router.send(RedisCommand(["MGET"] + ids.map { keys.node($0) }), slot: RedisClusterKeys.nodesSlot) { reply in
                    guard let values = reply?.array else { return completion(.failure(.unavailable("node registry read failed"))) }
                    completion(.success(RedisControlExchange.clusterNodes(ids: ids, values: values)))
                }
            }
        }
    }

    /// A message on a `{nodes}` sharded channel (bus loop): a command to run, or an answer to collect.
    func handleNodesMessage(channel: String, payload: UnsafeRawBufferPointer) {
        if channel == keys.ownControlChannel {
            if payload.starts(with: RedisControlExchange.replyTag) { control.answered(payload) }
        } else if channel == keys.apiChannel {
            let decoded = control.received(payload) { [self] from, answer in
                onLoop { [self] in
                    let cmd = RedisControlExchange.publish("SPUBLISH", channel: keys.controlChannel(of: from), payload: answer)
                    router.send(cmd, slot: RedisClusterKeys.nodesSlot) { _ in }
                }
            }
            if !decoded { log(.warn, "dropped a malformed server API command (cluster)", [("bytes", .int(payload.count))]) }
        }
    }

    // MARK: - HistoryReader

    /// A page of `room`'s history from the room's shard: the epoch (`HGET`), then the range. Fails with
    /// `.unavailable` while the slot map does not cover every slot or the shard does not answer.
    public func history(
        room: String, from: StreamOffset?, newestFirst: Bool, limit: Int,
        completion: @escaping @Sendable (Result<HistoryPage, BusError>) -> Void
    ) {
        onLoop { [self] in
            guard state == .up else { return completion(.failure(.unavailable("the Redis cluster is not serving every slot"))) }
            let slot = keys.slot(ofRoom: room)
            router.send(RedisCommand(["HGET", keys.meta(room), "epoch"]), slot: slot) { [self] epoch in
                guard let epoch, epoch.errorMessage == nil else { return completion(.failure(.unavailable("history read failed"))) }
                let read = RedisControlExchange.historyCommand(historyKey: keys.history(room), from: from, newestFirst: newestFirst, limit: limit)
                router.send(read, slot: slot) { reply in
                    completion(RedisControlExchange.historyPage(room: room, epoch: epoch.text, entries: reply, from: from))
                }
            }
        }
    }
}
