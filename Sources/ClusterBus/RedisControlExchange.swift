import Foundation
import Protocol
import Runtime

/// One server API command in flight from this node (bus loop only).
final class RedisControlRequest {
    let completion: @Sendable (Result<ControlOutcome, BusError>) -> Void
    var answers: [ControlAnswer] = []
    /// Receivers the publish reported; nil until its reply.
    var expected: Int?
    var cancelTimer: (() -> Void)?
    init(completion: @escaping @Sendable (Result<ControlOutcome, BusError>) -> Void) { self.completion = completion }
}

/// The server API's command/answer exchange over Redis pub/sub, shared by `RedisBus` (`PUBLISH`) and
/// `RedisClusterBus` (`SPUBLISH` on the `{nodes}` slot): the wire format, the commands in flight and their
/// completion (every receiver answered, or the timeout), and the answer to a command received.
///
/// Wire: a command is `{"rid":…,"from":node,"cmd":{…}}` on the API channel; the publish's receiver count is
/// how many answers to wait for; each node answers `api-reply:{"rid":…,"answer":{…}}` on the sender's own
/// control channel. The bus does the I/O; this type only keeps the books.
/// `pending` is confined to the bus loop; the handler is set from any thread.
final class RedisControlExchange: @unchecked Sendable {
    /// What precedes an answer on a node's own control channel (it shares the channel with canaries).
    static let replyTag = Array("api-reply:".utf8)

    private struct Wire: Codable {
        var rid: String
        var from: String
        var cmd: ControlCommand
    }

    private struct Reply: Codable {
        var rid: String
        var answer: ControlAnswer
    }

    private var pending: [String: RedisControlRequest] = [:]
    private let handler = Lock<ControlHandler?>(nil)

    /// What this node does with commands (any thread).
    func setHandler(_ handler: @escaping ControlHandler) { self.handler.withLock { $0 = handler } }

    /// Registers `command` as in flight from `node`, arms its timeout on `loop`, and returns its request id and
    /// the command that publishes it (`verb`: `PUBLISH` or `SPUBLISH`, on `channel`); nil (with `completion`
    /// already failed) when the command cannot be encoded.
    func begin(
        _ command: ControlCommand, from node: String, verb: String, channel: String, timeoutMilliseconds: Int, loop: EventLoop,
        completion: @escaping @Sendable (Result<ControlOutcome, BusError>) -> Void
    ) -> (rid: String, publish: RedisCommand)? {
        let rid = String(UInt64.random(in: 1...UInt64.max), radix: 16)
        guard let payload = try? JSONEncoder().encode(Wire(rid: rid, from: node, cmd: command)) else {
            completion(.failure(.invalid("command not encodable")))
            return nil
        }
        let request = RedisControlRequest(completion: completion)
        pending[rid] = request
        request.cancelTimer = loop.runAfter(milliseconds: max(1, timeoutMilliseconds)) { [weak self] in self?.finish(rid) }
        return (rid, RedisControlExchange.publish(verb, channel: channel, payload: [UInt8](payload)))
    }

    /// `{verb} {channel} {payload}` (`PUBLISH` or `SPUBLISH`).
    static func publish(_ verb: String, channel: String, payload: [UInt8]) -> RedisCommand {
        var cmd = RedisCommand(verb, argumentCount: 3, capacity: payload.count + channel.utf8.count + 32)
        cmd.append(channel)
        cmd.append(payload)
        return cmd
    }

    /// The publish of `rid` answered: `receivers` subscribers got it (nil: the publish failed, nothing was sent).
    func published(_ rid: String, receivers: Int?) {
        guard let r = pending[rid] else { return }
        guard let n = receivers else { return finish(rid, failure: .unavailable("the command did not reach Redis")) }
        r.expected = n
        if r.answers.count >= n { finish(rid) }
    }

    /// Completes `rid` with what it has, or with `failure`.
    func finish(_ rid: String, failure: BusError? = nil) {
        guard let r = pending.removeValue(forKey: rid) else { return }
        r.cancelTimer?()
        if let failure { return r.completion(.failure(failure)) }
        r.completion(.success(ControlOutcome(answers: r.answers, expectedNodes: r.expected ?? r.answers.count)))
    }

    /// A command from the API channel: runs the handler and calls `answer(sender, payload)` (from any thread)
    /// with the payload to publish on the sender's own control channel. False when `payload` is malformed.
    func received(_ payload: UnsafeRawBufferPointer, answer: @escaping @Sendable (String, [UInt8]) -> Void) -> Bool {
        guard let wire = try? JSONDecoder().decode(Wire.self, from: Data(payload)) else { return false }
        guard let handler = handler.withLock({ $0 }) else { return true }
        let rid = wire.rid
        let from = wire.from
        handler(wire.cmd) { result in
            guard let json = try? JSONEncoder().encode(Reply(rid: rid, answer: result)) else { return }
            answer(from, RedisControlExchange.replyTag + [UInt8](json))
        }
        return true
    }

    /// An answer (with its `replyTag`) from this node's own control channel (bus loop).
    func answered(_ payload: UnsafeRawBufferPointer) {
        let body = Data(payload.dropFirst(RedisControlExchange.replyTag.count))
        guard let reply = try? JSONDecoder().decode(Reply.self, from: body), let r = pending[reply.rid] else { return }
        r.answers.append(reply.answer)
        if let n = r.expected, r.answers.count >= n { finish(reply.rid) }
    }

    // MARK: - Registry and history replies (same shapes on both layouts)

    /// The registry entries of `ids` from the `MGET` of their node keys, in order; expired keys (nil) are
    /// skipped: the node is gone and the next heartbeat removes it from the set.
    static func clusterNodes(ids: [String], values: [RedisReply]) -> [ClusterNode] {
        var nodes: [ClusterNode] = []
        for (id, v) in zip(ids, values) {
            guard case .string(let json) = v, let info = NodeInfo(json: json) else { continue }
            nodes.append(ClusterNode(id: id, info: info))
        }
        return nodes
    }

    /// A history page from the room's epoch (`HGET meta epoch`) and an `XRANGE`/`XREVRANGE` reply: `.invalid`
    /// when `from` belongs to another epoch, an empty page when the room has no history.
    static func historyPage(room: String, epoch: String?, entries: RedisReply?, from: StreamOffset?) -> Result<HistoryPage, BusError> {
        guard let entries = entries?.array else { return .failure(.unavailable("history read failed")) }
        guard let epoch else { return .success(HistoryPage(messages: [], latest: nil)) }
        if let from, from.epoch != epoch {
            return .failure(.invalid("field 'from' is an offset of an earlier history of this room"))
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
        return .success(HistoryPage(messages: messages, latest: nil))
    }

    /// `XRANGE`/`XREVRANGE` of `historyKey` for a page: after (oldest first) or before (newest first) `from`.
    static func historyCommand(historyKey: String, from: StreamOffset?, newestFirst: Bool, limit: Int) -> RedisCommand {
        var args: [String]
        if newestFirst {
            args = ["XREVRANGE", historyKey, from.map { "(" + $0.entryID } ?? "+", "-"]
        } else {
            args = ["XRANGE", historyKey, from.map { "(" + $0.entryID } ?? "-", "+"]
        }
        return RedisCommand(args + ["COUNT", String(max(1, limit))])
    }
}
