import Protocol
import Runtime

/// Settings of a `RedisBus` (the gateway maps its flags onto these).
public struct RedisBusConfiguration: Sendable {
    /// Where Redis is (`--redis-url`).
    public var endpoint: RedisEndpoint
    /// Key and channel prefix (`--prefix`, default `sb:`); see `RedisKeys`.
    public var prefix: String
    /// This node's id (`--node-id`): registry key, presence field, control channel, client names.
    public var nodeID: String
    /// Messages kept per room history (`--history-size`, default 1,000; 0 keeps none, offsets still advance).
    public var historySize: Int
    /// Milliseconds a room's history (stream and meta hash) lives after its last publish (`--history-ttl`,
    /// default 24 h; 0 keeps it until trimmed or evicted). Bounds Redis memory when rooms come and go.
    public var historyTTLMilliseconds: Int
    /// Reconnect backoff (`--redis-backoff-base`, `--redis-backoff-cap`).
    public var backoff: RedisBackoff
    /// Milliseconds between heartbeats: registry refresh, dead-node cleanup, canary (`--heartbeat-interval`, default 2 s).
    public var heartbeatIntervalMilliseconds: Int
    /// Milliseconds the registry key lives without a heartbeat (`--node-ttl`, default 6 s). A dead node's
    /// presence entries are removed by a live node within TTL + one heartbeat (< 2 × TTL).
    public var nodeTTLMilliseconds: Int
    /// The attempt log: failed connection attempts 1...N in a row are logged, then every N-th
    /// (`--redis-attempt-log`, default 5; 1 logs every attempt).
    public var attemptLogEvery: Int
    /// Milliseconds a connect plus handshake may take before the attempt counts as failed (default 3 s).
    public var connectTimeoutMilliseconds: Int
    /// Milliseconds a canary may take to come back before the bus is marked unhealthy (default: the heartbeat
    /// interval, at least 250 ms: generous enough that a loaded but working node does not flap, short enough
    /// that a dead subscription is caught within two heartbeats).
    public var canaryTimeoutMilliseconds: Int
    /// Milliseconds a publish's idempotency key answers its first offset (`--idempotency-window`, default
    /// 2 min; 0 ignores keys). Each key is a Redis string with this TTL (`{prefix}idem:{room} {key}`).
    public var idempotencyWindowMilliseconds: Int
    /// Certificate checks for a `rediss://` endpoint (ignored for `redis://`).
    public var tls = RedisTLSSettings()

    public init(
        endpoint: RedisEndpoint, prefix: String = "sb:", nodeID: String, historySize: Int = 1000,
        historyTTLMilliseconds: Int = 86_400_000,
        backoff: RedisBackoff = RedisBackoff(), heartbeatIntervalMilliseconds: Int = 2000,
        nodeTTLMilliseconds: Int = 6000, attemptLogEvery: Int = 5, connectTimeoutMilliseconds: Int = 3000,
        canaryTimeoutMilliseconds: Int? = nil, idempotencyWindowMilliseconds: Int = 120_000
    ) {
        self.endpoint = endpoint
        self.prefix = prefix
        self.nodeID = nodeID
        self.historySize = max(0, historySize)
        self.historyTTLMilliseconds = max(0, historyTTLMilliseconds)
        self.backoff = backoff
        self.heartbeatIntervalMilliseconds = max(50, heartbeatIntervalMilliseconds)
        self.nodeTTLMilliseconds = max(self.heartbeatIntervalMilliseconds + 1, nodeTTLMilliseconds)
        self.attemptLogEvery = max(1, attemptLogEvery)
        self.connectTimeoutMilliseconds = max(100, connectTimeoutMilliseconds)
        self.canaryTimeoutMilliseconds = canaryTimeoutMilliseconds ?? max(250, self.heartbeatIntervalMilliseconds)
        self.idempotencyWindowMilliseconds = max(0, idempotencyWindowMilliseconds)
    }
}

/// What the node registry advertises about a node (with Redis: the registry key `{prefix}node:{id}`, refreshed every heartbeat).
public struct NodeInfo: Sendable, Equatable {
    /// `host:port` of the public WebSocket listener.
    public var address: String
    /// Wall-clock ms when the node started.
    public var startedAtMilliseconds: UInt64
    /// Open WebSocket connections.
    public var connections: Int
    /// True once the node stopped accepting (SIGTERM drain).
    public var draining: Bool

    public init(address: String = "", startedAtMilliseconds: UInt64 = 0, connections: Int = 0, draining: Bool = false) {
        self.address = address
        self.startedAtMilliseconds = startedAtMilliseconds
        self.connections = connections
        self.draining = draining
    }

    /// `{"id":…,"address":…,"started_ms":…,"connections":…,"draining":…}`.
    public func json(nodeID: String) -> [UInt8] {
        var out = Array(#"{"id":"#.utf8)
        out += JSONFragment.string(nodeID).bytes
        out += Array(#","address":"#.utf8) + JSONFragment.string(address).bytes
        out += Array(",\"started_ms\":\(startedAtMilliseconds),\"connections\":\(connections),\"draining\":\(draining)}".utf8)
        return out
    }
}

/// Log severities the bus uses (mapped onto the gateway's logger).
public enum RedisBusLogLevel: Sendable { case debug, info, warn, error }

/// A log field value.
public enum RedisBusLogValue: Sendable, Equatable {
    case string(String)
    case int(Int)
}

/// Where the bus logs: `(level, message, fields)`. Called on the bus loop; must not block.
public typealias RedisBusLogger = @Sendable (RedisBusLogLevel, String, [(String, RedisBusLogValue)]) -> Void

/// A point-in-time view of the bus's health for `/ready` (any thread).
public struct RedisBusHealth: Sendable, Equatable {
    public var commandsReady = false
    public var subscriberReady = false
    public var canaryHealthy = true
    /// Round trip of the last canary (ms).
    public var canaryRoundTripMilliseconds: Int?
    public var canaryFailures = 0
    /// The last connection error, if any.
    public var lastError: String?

    public init() {}

    /// `{"commands":"up","subscriber":"up","canary":{"healthy":true,"rtt_ms":0,"failures":0},"last_error":…}`.
    public var json: String {
        var s = "{\"commands\":\"\(commandsReady ? "up" : "down")\",\"subscriber\":\"\(subscriberReady ? "up" : "down")\","
        s += "\"canary\":{\"healthy\":\(canaryHealthy),\"rtt_ms\":\(canaryRoundTripMilliseconds.map(String.init) ?? "null"),\"failures\":\(canaryFailures)}"
        if let e = lastError { s += ",\"last_error\":" + JSONFragment.string(e).description }
        return s + "}"
    }
}
