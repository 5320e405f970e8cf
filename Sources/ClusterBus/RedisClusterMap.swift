/// A Redis Cluster node's address as the cluster announces it.
public struct RedisClusterNode: Sendable, Equatable, Hashable, CustomStringConvertible {
    public var id: String
    public var host: String
    public var port: Int
    public var isPrimary: Bool
    /// `online`, `fail` (Redis 7.0; the documentation says `failed`) or `loading` (CLUSTER SHARDS `health`).
    public var health: String
    /// The name the node announces (`cluster-announce-hostname`, CLUSTER SHARDS `hostname`), or nil: the name
    /// a TLS connection checks its certificate against.
    public var hostname: String?

    public init(id: String, host: String, port: Int, isPrimary: Bool, health: String = "online", hostname: String? = nil) {
        self.id = id
        self.host = host
        self.port = port
        self.isPrimary = isPrimary
        self.health = health
        self.hostname = hostname
    }

    public var description: String { "\(host):\(port)" }
}

/// Why a cluster answer could not be used: one line for the log and `/ready`.
public struct RedisClusterError: Error, Equatable, Sendable, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// The slot map of a Redis Cluster, from `CLUSTER SHARDS` (Redis 7): for every slot the shard that owns it,
/// with the shard's primary (the node commands and `SSUBSCRIBE` go to) and its replicas.
///
/// Sans-I/O: built from the reply value, queried by slot. A map with slots no shard serves is still built
/// (`uncoveredSlots` tells which: the cluster is broken or resharding, and commands for them fail with
/// `CLUSTERDOWN`); a shard whose primary is failed or missing has no `primary` until a replica is promoted.
public struct RedisClusterMap: Sendable, Equatable {
    public struct Shard: Sendable, Equatable {
        /// Inclusive slot ranges.
        public var ranges: [ClosedRange<Int>]
        public var primary: RedisClusterNode?
        public var replicas: [RedisClusterNode]
    }

    public private(set) var shards: [Shard]
    /// Index into `shards` per slot, -1 when no shard owns it.
    private var owner: [Int16]

    /// Parses a `CLUSTER SHARDS` reply (RESP2: each shard and node a flat key/value array). A node's port is
    /// `port` (plain TCP), else `tls-port`; with `preferTLSPort` (TLS clients) `tls-port` first. With
    /// `tls-cluster yes` Redis 7.0 lists the TLS port as `tls-port` and the plain one (if any) as `port`.
    /// Errors: `RedisClusterError` for an error reply (`ERR This instance has cluster support disabled` from a
    /// seed not in cluster mode) or a reply not in the documented shape.
    public init(shardsReply reply: RedisReply, preferTLSPort: Bool = false) throws(RedisClusterError) {
        if let e = reply.errorMessage { throw RedisClusterError("CLUSTER SHARDS failed: \(e)") }
        guard let list = reply.array else { throw RedisClusterError("CLUSTER SHARDS: not an array") }
        var shards: [Shard] = []
        var owner = [Int16](repeating: -1, count: RedisClusterSlot.count)
        for entry in list {
            let fields = try RedisClusterMap.fields(entry)
            guard let slots = fields["slots"]?.array, let nodes = fields["nodes"]?.array else {
                throw RedisClusterError("CLUSTER SHARDS: a shard without slots or nodes")
            }
            guard slots.count % 2 == 0 else { throw RedisClusterError("CLUSTER SHARDS: odd slot range list") }
            var ranges: [ClosedRange<Int>] = []
            var i = 0
            while i < slots.count {
                guard let lo = slots[i].int, let hi = slots[i + 1].int, 0 <= lo, lo <= hi, hi < RedisClusterSlot.count else {
                    throw RedisClusterError("CLUSTER SHARDS: bad slot range")
                }
                ranges.append(lo...hi)
                i += 2
            }
            var primary: RedisClusterNode?
            var replicas: [RedisClusterNode] = []
            for n in nodes {
                let f = try RedisClusterMap.fields(n)
                let plain = f["port"]?.int.flatMap { $0 > 0 ? $0 : nil }
                let tls = f["tls-port"]?.int.flatMap { $0 > 0 ? $0 : nil }
                guard let id = f["id"]?.text, let port = preferTLSPort ? tls ?? plain : plain ?? tls,
                    let host = f["endpoint"]?.text.flatMap({ $0 == "?" || $0.isEmpty ? nil : $0 }) ?? f["ip"]?.text
                else {
                    throw RedisClusterError("CLUSTER SHARDS: a node without id, address or port")
                }
                let node = RedisClusterNode(
                    id: id, host: host, port: port, isPrimary: f["role"]?.text == "master",
                    health: f["health"]?.text ?? "online", hostname: f["hostname"]?.text.flatMap { $0.isEmpty ? nil : $0 })
                if node.isPrimary {
                    if node.health != "failed" && node.health != "fail" { primary = node }
                } else {
                    replicas.append(node)
                }
            }
            // A shard of only failed nodes and no slots (a removed primary) carries nothing.
            if ranges.isEmpty && primary == nil { continue }
            let index = Int16(shards.count)
            for r in ranges { for s in r { owner[s] = index } }
            shards.append(Shard(ranges: ranges, primary: primary, replicas: replicas))
        }
        self.shards = shards
        self.owner = owner
    }

    /// The shard owning `slot`, or nil.
    public func shard(ofSlot slot: Int) -> Shard? {
        guard (0..<RedisClusterSlot.count).contains(slot), owner[slot] >= 0 else { return nil }
        return shards[Int(owner[slot])]
    }

    /// The primary serving `slot`, or nil (uncovered, or its primary failed).
    public func primary(ofSlot slot: Int) -> RedisClusterNode? { shard(ofSlot: slot)?.primary }

    /// Slots no shard serves, as ranges (empty for a healthy cluster).
    public var uncoveredSlots: [ClosedRange<Int>] {
        var out: [ClosedRange<Int>] = []
        var start: Int?
        for s in 0..<RedisClusterSlot.count {
            let served = owner[s] >= 0 && shards[Int(owner[s])].primary != nil
            if !served, start == nil { start = s }
            if served, let st = start { out.append(st...(s - 1)); start = nil }
        }
        if let st = start { out.append(st...(RedisClusterSlot.count - 1)) }
        return out
    }

    /// Notes a `MOVED` redirect: `slot` now belongs to the shard whose primary is `node` (if known), so
    /// commands go there before the next full refresh.
    public mutating func move(slot: Int, to host: String, port: Int) {
        guard (0..<RedisClusterSlot.count).contains(slot) else { return }
        if let i = shards.firstIndex(where: { $0.primary?.host == host && $0.primary?.port == port }) {
            owner[slot] = Int16(i)
        } else {
            shards.append(Shard(ranges: [slot...slot], primary: RedisClusterNode(id: "", host: host, port: port, isPrimary: true), replicas: []))
            owner[slot] = Int16(shards.count - 1)
        }
    }

    private static func fields(_ reply: RedisReply) throws(RedisClusterError) -> [String: RedisReply] {
        guard let a = reply.array, a.count % 2 == 0 else { throw RedisClusterError("CLUSTER SHARDS: an entry is not a key/value list") }
        var out: [String: RedisReply] = [:]
        var i = 0
        while i < a.count {
            guard let k = a[i].text else { throw RedisClusterError("CLUSTER SHARDS: a field name is not text") }
            out[k] = a[i + 1]
            i += 2
        }
        return out
    }
}

/// A cluster redirect in an error reply (Redis Cluster specification, "Redirection and resharding").
public enum RedisRedirect: Sendable, Equatable {
    /// `MOVED slot host:port`: the slot lives there for good; update the map and resend.
    case moved(slot: Int, host: String, port: Int)
    /// `ASK slot host:port`: during a migration this one key is there; resend once, preceded by `ASKING`.
    case ask(slot: Int, host: String, port: Int)

    /// The redirect in `error` (the text after `-`), or nil for any other error.
    public init?(error: String) {
        let parts = error.split(separator: " ")
        guard parts.count == 3, let slot = Int(parts[1]), (0..<RedisClusterSlot.count).contains(slot),
            let colon = parts[2].lastIndex(of: ":"), let port = Int(parts[2][parts[2].index(after: colon)...]), (1...65535).contains(port)
        else { return nil }
        var host = String(parts[2][..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        switch parts[0] {
        case "MOVED": self = .moved(slot: slot, host: host, port: port)
        case "ASK": self = .ask(slot: slot, host: host, port: port)
        default: return nil
        }
    }
}
