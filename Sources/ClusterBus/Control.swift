import Foundation
import Protocol
import Runtime
import Synchronization

/// A cluster-wide command of the server API (docs/api.md), carried to every node by a `ControlBus` and
/// applied there by the gateway. JSON on the wire (Redis channel `{prefix}api`); fields not used by a
/// kind are absent.
public struct ControlCommand: Codable, Sendable, Equatable {
    /// What to do on each node.
    public enum Kind: String, Codable, Sendable {
        /// Close every connection of `user` with `code` and `reason`, telling it whether to `reconnect`.
        case disconnect
        /// Make every room-protocol connection of `user` a member of `room` (it gets `joined`).
        case subscribe
        /// Take every connection of `user` out of `room` (it gets `left`).
        case unsubscribe
        /// Report the node's rooms (name, member connections) matching `pattern`, after `after`, at most `limit`.
        case rooms
        /// Report the node's users in `room` (user, connections), after `after`, at most `limit`.
        case presenceUsers = "presence_users"
    }

    /// What to do.
    public var kind: Kind
    /// The user (`sub` claim or auth backend identity) for disconnect, subscribe and unsubscribe.
    public var user: String?
    /// The room for subscribe, unsubscribe and presence_users.
    public var room: String?
    /// WebSocket close code (disconnect), 1000 or 3000-4999 (RFC 6455 §7.4).
    public var code: Int?
    /// Close reason (disconnect), at most 120 bytes so it fits a close frame (RFC 6455 §5.5: 123).
    public var reason: String?
    /// Whether the client should reconnect by itself (disconnect).
    public var reconnect: Bool?
    /// A room pattern (`*` one segment, `**` the rest; `RoomPattern` syntax) for `rooms`; nil: every room.
    public var pattern: String?
    /// Paging cursor: only names strictly greater (byte order) are reported.
    public var after: String?
    /// Most names reported per node.
    public var limit: Int?

    public init(
        kind: Kind, user: String? = nil, room: String? = nil, code: Int? = nil, reason: String? = nil,
        reconnect: Bool? = nil, pattern: String? = nil, after: String? = nil, limit: Int? = nil
    ) {
        self.kind = kind
        self.user = user
        self.room = room
        self.code = code
        self.reason = reason
        self.reconnect = reconnect
        self.pattern = pattern
        self.after = after
        self.limit = limit
    }
}

/// A name with a count: a room with its member connections, or a user with its connections.
public struct NamedCount: Codable, Sendable, Equatable {
    /// Room or user name.
    public var name: String
    /// Connections.
    public var count: Int
    public init(name: String, count: Int) {
        self.name = name
        self.count = count
    }
}

/// One node's answer to a `ControlCommand`.
public struct ControlAnswer: Codable, Sendable, Equatable {
    /// The answering node's id.
    public var node: String
    /// Connections the command changed on that node (disconnected, subscribed, unsubscribed).
    public var affected: Int
    /// For `rooms` / `presence_users`: the node's names in byte order, at most the command's `limit`.
    public var items: [NamedCount]?
    /// True when the node had more matching names than `limit` after the cursor.
    public var more: Bool?

    public init(node: String, affected: Int, items: [NamedCount]? = nil, more: Bool? = nil) {
        self.node = node
        self.affected = affected
        self.items = items
        self.more = more
    }
}

/// Every answer a command collected before its deadline.
public struct ControlOutcome: Sendable, Equatable {
    /// One per node that answered in time.
    public var answers: [ControlAnswer]
    /// Nodes the command reached (Redis: `PUBLISH`'s receiver count); fewer answers means a node was slow.
    public var expectedNodes: Int

    public init(answers: [ControlAnswer], expectedNodes: Int) {
        self.answers = answers
        self.expectedNodes = expectedNodes
    }

    /// Sum of `affected` over the answers.
    public var affected: Int { answers.reduce(0) { $0 + $1.affected } }

    /// Merges the nodes' `items` (summing counts of one name), in byte order, the first `limit`; `more` when
    /// any node had more or the merge had more than `limit`. Correct for paging: a name among the first
    /// `limit` of the union is among the first `limit` of every node that has it.
    public func mergedItems(limit: Int) -> (items: [NamedCount], more: Bool) {
        var sums: [String: Int] = [:]
        var more = false
        for a in answers {
            for i in a.items ?? [] { sums[i.name, default: 0] += i.count }
            if a.more == true { more = true }
        }
        let sorted = sums.keys.sorted { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }
        if sorted.count > limit { more = true }
        return (sorted.prefix(limit).map { NamedCount(name: $0, count: sums[$0]!) }, more)
    }
}

/// A node in the registry, as `info` reports it.
public struct ClusterNode: Sendable, Equatable {
    /// The node's `--node-id`.
    public var id: String
    /// What its last heartbeat advertised.
    public var info: NodeInfo
    public init(id: String, info: NodeInfo) {
        self.id = id
        self.info = info
    }
}

/// What a node does with a command: applies it and calls the reply once (from any thread).
public typealias ControlHandler = @Sendable (ControlCommand, @escaping @Sendable (ControlAnswer) -> Void) -> Void

/// The server API's cluster-wide role: commands to every node with their answers collected, and the node
/// registry as a list. In process: the only node is this one. Redis: channel `{prefix}api`, answers on
/// each sender's own `{prefix}ctl:{node}` channel (RedisBus+Control.swift).
public protocol ControlBus: AnyObject, Sendable {
    /// Sets what this node does with commands (every node, the sender included, runs it).
    func setControlHandler(_ handler: @escaping ControlHandler)
    /// Sends `command` to every node and collects their answers for at most `timeoutMilliseconds`
    /// (fewer when every node answered). `.unavailable` when the bus is down (nothing was sent).
    func sendControl(
        _ command: ControlCommand, timeoutMilliseconds: Int,
        completion: @escaping @Sendable (Result<ControlOutcome, BusError>) -> Void)
    /// The registered nodes other than this one (their last heartbeat); empty in process.
    func otherNodes(completion: @escaping @Sendable (Result<[ClusterNode], BusError>) -> Void)
}

/// One page of a room's history.
public struct HistoryPage: Sendable {
    /// Messages in the requested order.
    public var messages: [BusMessage]
    /// The room's latest offset (nil: no history).
    public var latest: StreamOffset?
    public init(messages: [BusMessage], latest: StreamOffset?) {
        self.messages = messages
        self.latest = latest
    }
}

/// Reads a room's stored history (the server API's `history`).
public protocol HistoryReader: AnyObject, Sendable {
    /// Up to `limit` messages of `room`: oldest first starting after `from` (nil: from the oldest kept),
    /// or newest first starting before `from` (nil: from the newest). `from` of another epoch than the
    /// room's history is `.invalid`; an unknown room is an empty page.
    func history(
        room: String, from: StreamOffset?, newestFirst: Bool, limit: Int,
        completion: @escaping @Sendable (Result<HistoryPage, BusError>) -> Void)
}

/// The control role of a single node: a command runs here only.
public final class LocalControl: ControlBus, @unchecked Sendable {
    private let handler = Lock<ControlHandler?>(nil)
    public init() {}

    public func setControlHandler(_ handler: @escaping ControlHandler) { self.handler.withLock { $0 = handler } }

    public func sendControl(
        _ command: ControlCommand, timeoutMilliseconds: Int,
        completion: @escaping @Sendable (Result<ControlOutcome, BusError>) -> Void
    ) {
        guard let h = handler.withLock({ $0 }) else { return completion(.success(ControlOutcome(answers: [], expectedNodes: 0))) }
        h(command) { answer in completion(.success(ControlOutcome(answers: [answer], expectedNodes: 1))) }
    }

    public func otherNodes(completion: @escaping @Sendable (Result<[ClusterNode], BusError>) -> Void) { completion(.success([])) }
}

extension ControlCommand {
    /// The command as JSON bytes (sorted keys).
    public func encoded() -> [UInt8] {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys]
        return (try? e.encode(self)).map { [UInt8]($0) } ?? []
    }
    /// Decodes a command; nil when malformed.
    public static func decode(_ bytes: [UInt8]) -> ControlCommand? { try? JSONDecoder().decode(ControlCommand.self, from: Data(bytes)) }
}
