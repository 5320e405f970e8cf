import Foundation
import Protocol
import Runtime

/// One server API command in flight from this node (bus loop only).
final class RedisControlRequest {
    let completion: @Sendable (Result<ControlOutcome, BusError>) -> Void
    var answers: [ControlAnswer] = []
    /// Receivers `PUBLISH` reported; nil until its reply.
    var expected: Int?
    var cancelTimer: (() -> Void)?
    init(completion: @escaping @Sendable (Result<ControlOutcome, BusError>) -> Void) { self.completion = completion }
}

/// The server API's `ControlBus` and `HistoryReader` over Redis.
///
/// A command is `PUBLISH {prefix}api {"rid":…,"from":node,"cmd":{…}}`; `PUBLISH` answers how many
/// subscribers got it (every live node subscribes `{prefix}api`, the sender included), which is how many
/// answers to wait for. Each node applies it and answers `PUBLISH {prefix}ctl:{from} api-reply:{"rid":…,
/// "answer":{…}}` on the sender's own control channel. The sender completes when every answer is in or at
/// the timeout, with what it has. On Redis Cluster `PUBLISH` counts one shard's subscribers only (not
/// supported here). History is `XRANGE`/`XREVRANGE` of `{prefix}history:{room}` with the epoch from
/// `{prefix}meta:{room}`.
extension RedisBus {
    static let controlReplyTag = Array("api-reply:".utf8)

    private struct Wire: Codable {
        var rid: String
        var from: String
        var cmd: ControlCommand
    }

    private struct Reply: Codable {
        var rid: String
        var answer: ControlAnswer
    }

    public func setControlHandler(_ handler: @escaping ControlHandler) { controlHandlerBox.withLock { $0 = handler } }

    public func sendControl(
        _ command: ControlCommand, timeoutMilliseconds: Int,
        completion: @escaping @Sendable (Result<ControlOutcome, BusError>) -> Void
    ) {
        onLoop { [self] in
            guard reportedUp, let conn = commands.connection else {
                return completion(.failure(.unavailable("the cluster bus is down (Redis unreachable)")))
            }
            let rid = String(UInt64.random(in: 1...UInt64.max), radix: 16)
            let wire = Wire(rid: rid, from: keys.nodeID, cmd: command)
            guard let payload = try? JSONEncoder().encode(wire) else {
                return completion(.failure(.invalid("command not encodable")))
            }
            let request = RedisControlRequest(completion: completion)
            controlPending[rid] = request
            request.cancelTimer = loop.runAfter(milliseconds: max(1, timeoutMilliseconds)) { [weak self] in self?.finishControl(rid) }
            var cmd = RedisCommand("PUBLISH", argumentCount: 3, capacity: payload.count + 64)
            cmd.append(keys.apiChannel)
            cmd.append([UInt8](payload))
            let sent = conn.send(cmd) { [self] reply in
                guard let r = controlPending[rid] else { return }
                guard let n = reply?.int else { return finishControl(rid, failure: .unavailable("the command did not reach Redis")) }
                r.expected = n
                if r.answers.count >= n { finishControl(rid) }
            }
            if !sent { finishControl(rid, failure: .unavailable("the Redis connection could not take the command")) }
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
                        { reply in
                            let values = reply?.array ?? []
                            var nodes: [ClusterNode] = []
                            for (id, v) in zip(ids, values) {
                                // An expired key: the node is gone (the next heartbeat cleans the set).
                                guard case .string(let json) = v, let info = NodeInfo(json: json) else { continue }
                                nodes.append(ClusterNode(id: id, info: info))
                            }
                            completion(.success(nodes))
                        })
                else { return completion(.failure(.unavailable("node registry read failed"))) }
            }
            if !sent { completion(.failure(.unavailable("node registry read failed"))) }
        }
    }

    /// A command from `{prefix}api` (bus loop): run the handler, publish its answer to the sender.
    func handleControlCommand(_ payload: UnsafeRawBufferPointer) {
        guard let wire = try? JSONDecoder().decode(Wire.self, from: Data(payload)) else {
            logger(.warn, "dropped a malformed server API command", [("bytes", .int(payload.count))])
            return
        }
        guard let handler = controlHandlerBox.withLock({ $0 }) else { return }
        let rid = wire.rid
        let target = keys.controlChannel(of: wire.from)
        handler(wire.cmd) { [self] answer in
            onLoop { [self] in
                guard let conn = commands.connection, let json = try? JSONEncoder().encode(Reply(rid: rid, answer: answer)) else { return }
                var cmd = RedisCommand("PUBLISH", argumentCount: 3, capacity: json.count + 64)
                cmd.append(target)
                cmd.append(RedisBus.controlReplyTag + [UInt8](json))
                _ = conn.send(cmd) { _ in }
            }
        }
    }

    /// An answer on this node's own control channel (bus loop).
    func handleControlReply(_ payload: UnsafeRawBufferPointer) {
        let body = Data(payload.dropFirst(RedisBus.controlReplyTag.count))
        guard let reply = try? JSONDecoder().decode(Reply.self, from: body), let r = controlPending[reply.rid] else { return }
        r.answers.append(reply.answer)
        if let n = r.expected, r.answers.count >= n { finishControl(reply.rid) }
    }

    private func finishControl(_ rid: String, failure: BusError? = nil) {
        guard let r = controlPending.removeValue(forKey: rid) else { return }
        r.cancelTimer?()
        if let failure { return r.completion(.failure(failure)) }
        r.completion(.success(ControlOutcome(answers: r.answers, expectedNodes: r.expected ?? r.answers.count)))
    }

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
            var args: [String]
            if newestFirst {
                args = ["XREVRANGE", keys.history(room), from.map { "(" + $0.entryID } ?? "+", "-"]
            } else {
                args = ["XRANGE", keys.history(room), from.map { "(" + $0.entryID } ?? "-", "+"]
            }
            args += ["COUNT", String(max(1, limit))]
            let sent = conn.send(RedisCommand(args)) { reply in
                guard let entries = reply?.array else { return completion(.failure(.unavailable("history read failed"))) }
                guard let epoch = epochBox.epoch else { return completion(.success(HistoryPage(messages: [], latest: nil))) }
                if let from, from.epoch != epoch {
                    return completion(.failure(.invalid("field 'from' is an offset of an earlier history of this room")))
                }
                var messages: [BusMessage] = []
                for e in entries {
                    guard let parts = e.array, parts.count == 2, let id = parts[0].text, let fields = parts[1].array,
                        let offset = StreamOffset(epoch + ":" + id)
                    else { continue }
                    var data: JSONFragment?
                    var i = 0
                    while i + 1 < fields.count {
                        if fields[i].text == "d", case .string(let b) = fields[i + 1] { data = JSONFragment(bytes: b) }
                        i += 2
                    }
                    guard let data else { continue }
                    messages.append(BusMessage(room: room, offset: offset, data: data, publishedAtMilliseconds: offset.milliseconds))
                }
                completion(.success(HistoryPage(messages: messages, latest: nil)))
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
