/// Key and channel names in Redis Cluster mode: every key and the channel of one room carry the room as a
/// hash tag, so a room's history, meta, idempotency keys, presence and sharded channel live in one slot
/// (one shard) and the publish script (`XADD` + `SPUBLISH`) never crosses slots; the registry, the drain
/// semaphore and the control channels share the `{nodes}` tag (one slot for the cluster-wide node state).
///
/// | name | slot of | standalone twin |
/// | --- | --- | --- |
/// | `{prefix}room:{T}` (sharded channel) | room | `{prefix}room:{room}` |
/// | `{prefix}history:{T}`, `{prefix}meta:{T}` | room | same without the tag braces |
/// | `{prefix}idem:{T} {key}` | room | `{prefix}idem:{room} {key}` |
/// | `{prefix}presence:{T}`, `{prefix}presence-users:{T} {node}` | room | same |
/// | `{prefix}{nodes}node:{id}`, `…node-rooms:{id}`, `…nodes`, `…drain-slots`, `…ctl`, `…ctl:{id}`, `…api` | `nodes` | `{prefix}node:{id}` … |
/// | `{prefix}sio:session:{key}`, `{prefix}ratelimit:analytics:{user}`, `{prefix}analytics` | the key's own | same |
///
/// `T` is the room name itself, or `%` + the hex of its UTF-8 bytes when it contains `{` or `}` or starts
/// with `%` (a brace would end or empty the tag and scatter the room's keys over slots); the mapping is
/// one-to-one, so no two rooms share a key. The prefix must not contain `{` (its tag would win).
///
/// Migration from the standalone layout: the names differ, so a cluster starts with empty histories;
/// nodes on the two layouts do not see each other's messages (move all nodes at once; clients resume with
/// `recovered: false`).
public struct RedisClusterKeys: Sendable, Equatable {
    public let prefix: String
    public let nodeID: String

    /// - Precondition: `prefix` has no `{` (checked by the configuration; a tag in it would pin every key to one slot).
    public init(prefix: String, nodeID: String) {
        self.prefix = prefix
        self.nodeID = nodeID
    }

    /// The hash tag of `room` (see the type's notes).
    public static func tag(_ room: String) -> String {
        let bytes = Array(room.utf8)
        let plain = !bytes.contains(UInt8(ascii: "{")) && !bytes.contains(UInt8(ascii: "}")) && bytes.first != UInt8(ascii: "%")
        if plain { return room }
        let hex = Array("0123456789abcdef".utf8)
        var out: [UInt8] = [UInt8(ascii: "%")]
        for b in bytes {
            out.append(hex[Int(b >> 4)])
            out.append(hex[Int(b & 0xF)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// The room of a tag, or nil when `tag` is no valid escape.
    public static func room(ofTag tag: Substring) -> String? {
        guard tag.first == "%" else { return String(tag) }
        let hex = Array(tag.utf8.dropFirst())
        guard hex.count % 2 == 0 else { return nil }
        var out: [UInt8] = []
        var i = 0
        while i < hex.count {
            guard let v = UInt8(String(decoding: hex[i..<(i + 2)], as: UTF8.self), radix: 16) else { return nil }
            out.append(v)
            i += 2
        }
        return String(decoding: out, as: UTF8.self)
    }

    private func tagged(_ kind: String, _ room: String) -> String { prefix + kind + "{" + RedisClusterKeys.tag(room) + "}" }

    /// The slot every key of `room` hashes to.
    public func slot(ofRoom room: String) -> Int { RedisClusterSlot.slot(of: RedisClusterKeys.tag(room)) }

    /// The sharded channel of `room` (`SSUBSCRIBE` / `SPUBLISH`).
    public func roomChannel(_ room: String) -> String { tagged("room:", room) }
    public func history(_ room: String) -> String { tagged("history:", room) }
    public func meta(_ room: String) -> String { tagged("meta:", room) }
    public func presence(_ room: String) -> String { tagged("presence:", room) }
    public func presenceUsers(_ room: String, node: String) -> String { tagged("presence-users:", room) + " " + node }
    public func idempotency(_ room: String, key: String) -> String { tagged("idem:", room) + " " + key }
    public func node(_ id: String) -> String { prefix + "{nodes}node:" + id }
    public func nodeRooms(_ id: String) -> String { prefix + "{nodes}node-rooms:" + id }
    public var nodes: String { prefix + "{nodes}nodes" }
    public var drainSlots: String { prefix + "{nodes}drain-slots" }
    public var controlChannel: String { prefix + "{nodes}ctl" }
    public var ownControlChannel: String { prefix + "{nodes}ctl:" + nodeID }
    /// `{prefix}{nodes}ctl:{id}`: node `id`'s own sharded control channel (server API answers).
    public func controlChannel(of id: String) -> String { prefix + "{nodes}ctl:" + id }
    /// `{prefix}{nodes}api`: the sharded channel of server API commands to every node.
    public var apiChannel: String { prefix + "{nodes}api" }
    /// The prefix the standalone registry scripts are given in cluster mode: their derived names
    /// (`node:{id}`, `node-rooms:{id}`, `ctl`) then land on the `nodes` slot.
    public var nodesPrefix: String { prefix + "{nodes}" }
    /// The slot of every `{nodes}` key and channel.
    public static let nodesSlot = RedisClusterSlot.slot(of: "nodes")
    /// A Socket.IO recovery record (`SessionStore`): the standalone name, on its own slot.
    public func session(_ key: String) -> String { prefix + "sio:session:" + key }

    /// The room of a room channel name, or nil for another channel.
    public func room(ofChannel channel: String) -> String? {
        let head = prefix + "room:{"
        guard channel.hasPrefix(head), channel.hasSuffix("}") else { return nil }
        return RedisClusterKeys.room(ofTag: channel.dropFirst(head.count).dropLast())
    }
}
