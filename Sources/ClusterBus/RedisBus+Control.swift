import Foundation
import Protocol
import Runtime

/// The server API's `ControlBus` and `HistoryReader` over Redis.
///
/// A command is `PUBLISH {prefix}api {"rid":…,"from":node,"cmd":{…}}`; `PUBLISH` answers how many
/// subscribers got it (every live node subscribes `{prefix}api`, the sender included), which is how many
/// answers to wait for. Each node applies it and answers `PUBLISH {prefix}ctl:{from} api-reply:{"rid":…,
/// "answer":{…}}` on the sender's own control channel. The sender completes when every answer is in or at
/// the timeout, with what it has (the books: `RedisControlExchange`, shared with `RedisClusterBus`). History is `XRANGE`/`XREVRANGE` of `{prefix}history:{room}` with the epoch from
/// `{prefix}meta:{room}`.
extension RedisBus {
    public func setControlHandler(_ handler: @escaping ControlHandler) { control.setHandler(handler) }

    public func sendControl(
        _ command: ControlCommand, timeoutMilliseconds: Int,
        completion: @escaping @Sendable (Result<ControlOutcome, BusError>) -> Void
    ) {
        onLoop { [self] in
            guard reportedUp, let conn = commands.connection else {
                return completion(.failure(.unavailable("the cluster bus is down (Redis unreachable)")))
            }
            guard
                let (rid, cmd) = control.begin(
                    command, from: keys.nodeID, verb: "PUBLISH", channel: keys.apiChannel, timeoutMilliseconds: timeoutMilliseconds,
                    loop: loop, completion: completion)
            else { return }
            let sent = conn.send(cmd) { [self] reply in control.published(rid, receivers: reply?.int) }
            if !sent { control.finish(rid, failure: .unavailable("the Redis connection could not take the command")) }
        }
    }

    public func otherNodes(completion: @escaping @Sendable (Result<[ClusterNode], BusError>) -> Void) {
        onLoop { [self] in
            guard commands.isReady, let conn = commands.connection else {
                return completion(.failure(.unavailable("the cluster bus is down (Redis unreachable)")))
            }
            let sent = conn.send(RedisCommand(["SMEMBERS", keys.nodes])) { [self] reply in
                let ids = (reply?.array ?? []).compactMap(\.text).filter { $0 != keys.nodeID }.sorted()
                guard !ids.isEmpty else { return completion(.success([])) }
                guard let c = commands.connection,
                    c.send(
                        RedisCommand(["MGET"] + ids.map { keys.node($0) }),
                        { reply in completion(.success(RedisControlExchange.clusterNodes(ids: ids, values: reply?.array ?? []))) })
                else { return completion(.failure(.unavailable("node registry read failed"))) }
            }
            if !sent { completion(.failure(.unavailable("node registry read failed"))) }
        }
    }

    /// A command from `{prefix}api` (bus loop): run the handler, publish its answer to the sender.
    func handleControlCommand(_ payload: UnsafeRawBufferPointer) {
        let decoded = control.received(payload) { [self] from, answer in
            onLoop { [self] in
                guard let conn = commands.connection else { return }
                _ = conn.send(RedisControlExchange.publish("PUBLISH", channel: keys.controlChannel(of: from), payload: answer)) { _ in }
            }
        }
        if !decoded { logger(.warn, "dropped a malformed server API command", [("bytes", .int(payload.count))]) }
    }

    /// An answer on this node's own control channel (bus loop).
    func handleControlReply(_ payload: UnsafeRawBufferPointer) { control.answered(payload) }

    // MARK: - HistoryReader

    public func history(
        room: String, from: StreamOffset?, newestFirst: Bool, limit: Int,
        completion: @escaping @Sendable (Result<HistoryPage, BusError>) -> Void
    ) {
        onLoop { [self] in
            guard commands.isReady, let conn = commands.connection else {
                return completion(.failure(.unavailable("the cluster bus is down (Redis unreachable)")))
            }
            let epochBox = EpochBox()
            // Pipelined on one connection: the HGET's answer arrives first.
            _ = conn.send(RedisCommand(["HGET", keys.meta(room), "epoch"])) { reply in epochBox.epoch = reply?.text }
            let read = RedisControlExchange.historyCommand(historyKey: keys.history(room), from: from, newestFirst: newestFirst, limit: limit)
            let sent = conn.send(read) { reply in
                completion(RedisControlExchange.historyPage(room: room, epoch: epochBox.epoch, entries: reply, from: from))
            }
            if !sent { completion(.failure(.unavailable("history read failed"))) }
        }
    }
}

/// The epoch read by the pipelined HGET, read by the XRANGE's completion (same bus loop, in order).
private final class EpochBox: @unchecked Sendable { var epoch: String? }

extension NodeInfo {
    /// Parses the registry value written by `json(nodeID:)`; nil when malformed.
    init?(json: [UInt8]) {
        guard let o = (try? JSONSerialization.jsonObject(with: Data(json))) as? [String: Any] else { return nil }
        self.init(
            address: o["address"] as? String ?? "", startedAtMilliseconds: UInt64(o["started_ms"] as? Int ?? 0),
            connections: o["connections"] as? Int ?? 0, draining: o["draining"] as? Bool ?? false)
    }
}
