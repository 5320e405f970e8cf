import Runtime

/// Redis key and channel names of one cluster (DESIGN.md "Redis layout"), all under `prefix` (`--prefix`,
/// default `sb:`). Every node of a cluster must use the same prefix and database.
///
/// | name | type | what |
/// | --- | --- | --- |
/// | `{prefix}room:{room}` | channel | room messages, payload `{"offset":"…","data":…}` |
/// | `{prefix}history:{room}` | stream | recent messages, field `d` = data JSON; entry ID = offset without epoch |
/// | `{prefix}meta:{room}` | hash | `epoch` (random hex, made with the stream), `trimmed` (last entry ID trimmed) |
/// | `{prefix}idem:{room} {key}` | string, TTL | a publish's idempotency key → its offset, for `--idempotency-window` |
/// | `{prefix}presence:{room}` | hash | node id → this node's member count |
/// | `{prefix}node:{id}` | string, TTL | node info JSON, refreshed every heartbeat |
/// | `{prefix}node-rooms:{id}` | set | rooms where node `id` has a presence entry (for cleanup) |
/// | `{prefix}nodes` | set | ids of registered nodes (for dead-node cleanup) |
/// | `{prefix}drain-slots` | sorted set | node id → expiry (ms): the cluster-wide drain semaphore |
/// | `{prefix}ctl` | channel | node-up / node-draining / node-down announcements (JSON) |
/// | `{prefix}ctl:{id}` | channel | node `id`'s own control channel (canaries, server API answers) |
/// | `{prefix}api` | channel | server API commands to every node (JSON, RedisBus+Control.swift) |
public struct RedisKeys: Sendable, Equatable {
    public let prefix: String
    public let nodeID: String
    /// `{prefix}room:`: room channels start with it.
    public let roomChannelPrefix: String
    /// `{prefix}ctl`.
    public let controlChannel: String
    /// `{prefix}ctl:{node}`.
    public let ownControlChannel: String
    /// `{prefix}api`: server API commands.
    public let apiChannel: String

    public init(prefix: String, nodeID: String) {
        self.prefix = prefix
        self.nodeID = nodeID
        self.roomChannelPrefix = prefix + "room:"
        self.controlChannel = prefix + "ctl"
        self.ownControlChannel = prefix + "ctl:" + nodeID
        self.apiChannel = prefix + "api"
    }

    public func roomChannel(_ room: String) -> String { roomChannelPrefix + room }
    public func history(_ room: String) -> String { prefix + "history:" + room }
    public func meta(_ room: String) -> String { prefix + "meta:" + room }
    public func presence(_ room: String) -> String { prefix + "presence:" + room }
    /// A node's authenticated users in a room; the space cannot occur in a room name, so room and node
    /// never run together ambiguously.
    public func presenceUsers(_ room: String, node: String) -> String { prefix + "presence-users:" + room + " " + node }
    /// A publish's idempotency key in a room (the space cannot occur in a room name, so any key is unambiguous).
    public func idempotency(_ room: String, key: String) -> String { prefix + "idem:" + room + " " + key }
    public func node(_ id: String) -> String { prefix + "node:" + id }
    /// `{prefix}ctl:{id}`: node `id`'s own control channel.
    public func controlChannel(of id: String) -> String { prefix + "ctl:" + id }
    public func nodeRooms(_ id: String) -> String { prefix + "node-rooms:" + id }
    public var nodes: String { prefix + "nodes" }
    public var drainSlots: String { prefix + "drain-slots" }

    /// The room of a room channel name, or nil for another channel.
    public func room(ofChannel channel: String) -> String? {
        guard channel.hasPrefix(roomChannelPrefix) else { return nil }
        return String(channel.dropFirst(roomChannelPrefix.count))
    }
}
