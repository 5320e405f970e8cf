/// Tells from the heartbeat's answers whether another live node uses this node's id (the `heartbeat`
/// script returns the registry value it replaced): one Redis and Redis Cluster alike. No I/O.
///
/// Two live nodes with one id share one registry key and one presence entry per room (counts are wrong, a
/// clean stop of one removes both), so the bus logs it at `error` and counts it
/// (`switchboard_bus_node_id_conflicts_total` with one Redis).
struct RedisNodeIDWatch {
    /// What one heartbeat's answer showed.
    enum Finding: Equatable {
        /// Nothing unusual.
        case none
        /// The key held `other` (another node's value) instead of what this node wrote last.
        case conflict(other: String)
        /// The first heartbeat found the key live: a restarted node within the TTL, or another node with this id.
        case liveAtStartup
    }

    private var lastWritten: [UInt8]?
    private var answered = false

    /// The heartbeat's answer was lost with the connection: the script may have run, so the key's value is unknown.
    mutating func lost() { lastWritten = nil }

    /// A heartbeat answered: it replaced `previous` (empty: no key) with `wrote`; `reset` for the first one
    /// after a (re)connect, whose replaced value is not compared.
    mutating func answered(previous: [UInt8], wrote: [UInt8], reset: Bool) -> Finding {
        defer {
            answered = true
            lastWritten = wrote
        }
        if !reset, let mine = lastWritten, !previous.isEmpty, previous != mine {
            return .conflict(other: String(decoding: previous, as: UTF8.self))
        }
        return !answered && !previous.isEmpty ? .liveAtStartup : .none
    }

    /// Logs `finding` for `nodeID` (the conflict at `error`); true for a conflict, for the caller's counter.
    static func log(_ finding: Finding, nodeID: String, _ logger: RedisBusLogger) -> Bool {
        switch finding {
        case .none:
            return false
        case .conflict(let other):
            logger(.error, "another live node uses this node id: give every node its own --node-id", [("node_id", .string(nodeID)), ("other", .string(other))])
            return true
        case .liveAtStartup:
            logger(
                .info, "registry key of this node id was live at startup (a restarted node, or another node with this id)",
                [("node_id", .string(nodeID))])
            return false
        }
    }
}
