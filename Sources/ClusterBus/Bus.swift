import Protocol
import Runtime

/// A room message as the bus hands it to a node: decoded once per node, then framed once and fanned out.
public struct BusMessage: Sendable {
    /// Room name (validated by `Envelope.isValidRoomName`).
    public let room: String
    /// Opaque, totally ordered per room: see `StreamOffset`.
    public let offset: StreamOffset
    /// The published `data` value as compact JSON text.
    public let data: JSONFragment
    /// Wall-clock ms when the bus accepted the publish (for cross-node latency histograms).
    public let publishedAtMilliseconds: UInt64

    public init(room: String, offset: StreamOffset, data: JSONFragment, publishedAtMilliseconds: UInt64) {
        self.room = room
        self.offset = offset
        self.data = data
        self.publishedAtMilliseconds = publishedAtMilliseconds
    }
}

/// Whether the bus can currently carry messages.
public enum BusState: String, Sendable {
    /// Connected and subscribed: publishes succeed.
    case up
    /// Connecting or backing off after a failure: publishes fail at once with `BusError.unavailable`.
    case down
}

/// Why a bus operation failed.
public enum BusError: Error, Equatable, Sendable {
    /// The bus is down (Redis unreachable, reconnecting); the client gets `error {code: "unavailable"}`.
    case unavailable(String)
    /// The request itself is wrong (e.g. a malformed offset).
    case invalid(String)
    /// The publish was handed to Redis and its answer was never seen (the connection was lost or failed
    /// while it was in flight): it may or may not have been stored and delivered. A retry with the same
    /// idempotency key is safe within the idempotency window; the client gets `error {code: "unknown"}`.
    case unknown(String)

    /// The human-readable reason.
    public var message: String {
        switch self {
        case .unavailable(let s), .invalid(let s), .unknown(let s): s
        }
    }

    /// The client protocol's error code for this failure: `unavailable` (refused, nothing was written),
    /// `bad_request` (invalid) or `unknown` (outcome not known).
    public var errorCode: ErrorCode {
        switch self {
        case .unavailable: .unavailable
        case .invalid: .badRequest
        case .unknown: .unknown
        }
    }
}

/// A room's presence across the cluster (`presence {room}`).
public struct PresenceCount: Sendable, Equatable {
    /// Member connections on every node.
    public var connections: Int
    /// Distinct authenticated users among them (a user connected twice, or on two nodes, counts once).
    public var users: Int

    public init(connections: Int, users: Int) {
        self.connections = connections
        self.users = users
    }
}

/// What a join learned from the room's history (RFC-free: Switchboard's resume contract, DESIGN.md).
public struct JoinResult: Sendable {
    /// The room's latest offset at join time (the client resumes from here if it has nothing newer).
    public let offset: StreamOffset
    /// True when `since` was given and every message after it is in `replay` (no gap).
    public let recovered: Bool
    /// Messages after `since`, oldest first (empty without `since`).
    public let replay: [BusMessage]

    public init(offset: StreamOffset, recovered: Bool, replay: [BusMessage]) {
        self.offset = offset
        self.recovered = recovered
        self.replay = replay
    }
}

/// Receives what the bus delivers. Implemented by the gateway's hub.
public protocol BusDelegate: AnyObject, Sendable {
    /// A message for a room this node subscribed to. Called from any thread, one call at a time per bus,
    /// in offset order per room; must not block and must not call back into the bus synchronously.
    func busDeliver(_ message: BusMessage)
    /// The bus went up or down.
    func busStateChanged(_ state: BusState)
}

// MARK: - Roles

/// Rooms and their history: node-level subscriptions, publish with offsets, join and resume.
///
/// Subscriptions are node-level: the hub calls `subscribe` when a room gets its first local member on this
/// node and `unsubscribe` after its last one leaves; calls for one room arrive in order. Messages of
/// subscribed rooms reach the `BusDelegate` given to `ClusterServices.start(delegate:)`.
public protocol RoomBus: AnyObject, Sendable {
    /// This node wants the room's messages.
    func subscribe(room: String)
    /// This node no longer wants the room's messages.
    func unsubscribe(room: String)
    /// Appends `data` to the room's history and delivers it to every subscribed node (this one included).
    ///
    /// `completion` runs on any thread, once, with one of three outcomes:
    /// - `.success(offset)`: stored and delivered (delivered);
    /// - `.failure(.unavailable)` / `.invalid`: refused, nothing was or will be written (answered at once
    ///   when the bus is down);
    /// - `.failure(.unknown)`: handed to the backend, answer not seen; it may have been stored.
    ///
    /// `idempotencyKey` (nil: none; at most `maxIdempotencyKeyBytes` UTF-8 bytes, longer keys are refused
    /// with `.invalid`): a publish with a key already stored for this room within the idempotency window
    /// is not stored again and answers the offset of the first one.
    func publish(
        room: String, data: JSONFragment, idempotencyKey: String?,
        completion: @escaping @Sendable (Result<StreamOffset, BusError>) -> Void)
    /// The room's latest offset and, with `since`, the messages after it (resume, DESIGN.md).
    func join(room: String, since: StreamOffset?, completion: @escaping @Sendable (Result<JoinResult, BusError>) -> Void)
    /// Bytes of room history this process holds, for `switchboard_memory_bytes{area="history"}`: 0 for a
    /// backend that keeps history elsewhere (Redis streams).
    var historyMemoryBytes: Int { get }
    /// Messages dropped from history by a node-wide memory budget since start (0 without one), for
    /// `switchboard_history_evictions_total`.
    var historyEvictions: Int { get }
}

extension RoomBus {
    /// Default for a backend that keeps history outside the process (Redis streams): 0.
    public var historyMemoryBytes: Int { 0 }
    /// Default for a backend without a node-wide history budget: 0.
    public var historyEvictions: Int { 0 }
}

/// Longest idempotency key a `RoomBus` takes, in UTF-8 bytes.
public let maxIdempotencyKeyBytes = 512

/// Cluster-wide presence: per-node member counts and users, summed on read.
public protocol PresenceBus: AnyObject, Sendable {
    /// Records this node's member count for `room` (0 removes the entry, and this node's users with it).
    func setPresence(room: String, localCount: Int)
    /// Records that `user` has (`present`) or no longer has a connection in `room` on this node. Called on
    /// the node's 0 ↔ 1 transitions only, after the `setPresence` that made the count non-zero.
    func setPresenceUser(room: String, user: String, present: Bool)
    /// Cluster-wide presence of `room`: member connections and distinct users.
    func presence(room: String, completion: @escaping @Sendable (Result<PresenceCount, BusError>) -> Void)
}

/// The node registry and drain coordination, plus what the backend reports about itself (readiness
/// detail, metrics). The in-process implementation is a single node's: nobody to tell, never a wait.
public protocol NodeRegistry: AnyObject, Sendable {
    /// Supplies what the registry advertises (address, connection count, draining); read every heartbeat
    /// on the bus's thread, so it must be cheap and non-blocking.
    func setNodeInfoProvider(_ provider: @escaping @Sendable () -> NodeInfo)
    /// Marks this node as draining in the node registry and announces `node-draining` on the control channel.
    func announceDraining()
    /// Tries to take one of `maxDraining` cluster-wide drain slots (a semaphore whose entries expire after
    /// `ttlMilliseconds`, so a crashed node cannot hold one forever). `completion(true)` when taken.
    func acquireDrainSlot(maxDraining: Int, ttlMilliseconds: Int, completion: @escaping @Sendable (Bool) -> Void)
    /// Releases the slot taken by `acquireDrainSlot` (also done by `shutdown`).
    func releaseDrainSlot()
    /// Extra detail for the readiness JSON's bus dependency: a member name and a JSON object
    /// (e.g. `("redis", "{\"commands\":\"ready\",…}")`), or nil when the backend has none.
    var readinessDetail: (name: String, json: String)? { get }
    /// Appends the backend's own Prometheus families (`switchboard_bus_*`, `switchboard_redis_*`); none for
    /// the in-process bus.
    func writeMetrics(to writer: inout PrometheusWriter)
}

/// Analytics: a cluster-wide per-user budget and an append-only event stream.
public protocol AnalyticsBus: AnyObject, Sendable {
    /// Takes one event from `user`'s budget shared by every node (token bucket: `ratePerSecond`, `burst`).
    /// `completion(nil)` when allowed, else the ms until the next event would be allowed. A bus that is down
    /// answers not allowed (`retryAfter` 1000 ms) rather than letting events through unmetered.
    func takeAnalyticsBudget(user: String, ratePerSecond: Double, burst: Int, completion: @escaping @Sendable (Int?) -> Void)
    /// Appends accepted events to the analytics stream, trimmed to about `maxLength` entries.
    func appendAnalytics(_ events: [AnalyticsEvent], maxLength: Int)
    /// The newest `count` events, oldest first (for the admin endpoint and tests).
    func recentAnalytics(count: Int, completion: @escaping @Sendable ([AnalyticsEvent]) -> Void)
    /// Bytes of analytics events this process holds, for `switchboard_memory_bytes{area="analytics"}`
    /// (0 when the stream lives in Redis).
    var analyticsMemoryBytes: Int { get }
}

extension AnalyticsBus {
    /// Default for a backend that keeps the stream outside the process (Redis): 0.
    public var analyticsMemoryBytes: Int { 0 }
}

/// Start, stop and state of whatever carries the roles (a Redis connection pair, or nothing at all).
public protocol BusLifecycle: AnyObject, Sendable {
    /// Starts the bus; deliveries and state changes go to `delegate` (held strongly).
    func start(delegate: BusDelegate)
    /// Stops the bus and calls `completion` (from any thread) once it released its resources.
    func shutdown(completion: @escaping @Sendable () -> Void)
    /// Current state (thread-safe).
    var state: BusState { get }
}

/// The bus roles a node uses, with their shared lifecycle: what `GatewayNode` is given (or builds
/// from its flags). Callers see roles only; which object implements which role is the backend's business.
public struct ClusterServices: Sendable {
    /// Rooms and history.
    public let rooms: RoomBus
    /// Cluster-wide presence.
    public let presence: PresenceBus
    /// Node registry and drain coordination.
    public let registry: NodeRegistry
    /// Analytics budget and stream.
    public let analytics: AnalyticsBus
    /// Server API commands to every node and the node list (Control.swift).
    public let control: ControlBus
    /// History reads for the server API; nil when the rooms backend has none (the API answers 503).
    public let history: HistoryReader?
    /// Short-lived records readable by every node (Socket.IO recovery); in process unless the backend has one.
    public var sessions: any SessionStore = LocalSessionStore()
    private let lifecycle: BusLifecycle

    /// Bundles roles with the lifecycle that starts and stops them. `control` defaults to a single node's
    /// (`LocalControl`), `history` to `rooms` when it reads history.
    public init(
        rooms: RoomBus, presence: PresenceBus, registry: NodeRegistry, analytics: AnalyticsBus, lifecycle: BusLifecycle,
        control: ControlBus? = nil, history: HistoryReader? = nil
    ) {
        self.rooms = rooms
        self.presence = presence
        self.registry = registry
        self.analytics = analytics
        self.lifecycle = lifecycle
        self.control = control ?? LocalControl()
        self.history = history ?? (rooms as? HistoryReader)
    }

    /// Starts delivery; messages and state changes go to `delegate`.
    public func start(delegate: BusDelegate) { lifecycle.start(delegate: delegate) }
    /// Stops the bus (presence and registry entries removed, drain slot released); `completion` from any thread.
    public func shutdown(completion: @escaping @Sendable () -> Void) { lifecycle.shutdown(completion: completion) }
    /// Up or down (thread-safe).
    public var state: BusState { lifecycle.state }

    /// The in-process bus of a single node (`LocalRooms`, `LocalPresence`, `LocalRegistry`, `LocalAnalytics`).
    /// - Parameters:
    ///   - historySize: messages kept per room for resume.
    ///   - historyTTLMilliseconds: a room's history is dropped this long after its last publish (0: never).
    ///   - idempotencyWindowMilliseconds: how long a publish's idempotency key is remembered (0: keys ignored).
    ///   - historyBytes: bytes of history kept per room (0: count only), see `LocalRooms.init`.
    ///   - maxHistoryMemory: bytes of history kept by the node (0: no limit), see `LocalRooms.init`.
    ///   - analyticsBytes: bytes of events the analytics ring keeps (0: count only), see `LocalAnalytics.init`.
    public static func local(
        historySize: Int = 1000, historyTTLMilliseconds: Int = 86_400_000,
        idempotencyWindowMilliseconds: Int = 120_000, historyBytes: Int = 16 << 20,
        maxHistoryMemory: Int = 256 << 20, analyticsBytes: Int = 64 << 20
    ) -> ClusterServices {
        let rooms = LocalRooms(
            historySize: historySize, historyTTLMilliseconds: historyTTLMilliseconds,
            idempotencyWindowMilliseconds: idempotencyWindowMilliseconds,
            historyBytes: historyBytes, maxHistoryMemory: maxHistoryMemory)
        return ClusterServices(
            rooms: rooms, presence: LocalPresence(), registry: LocalRegistry(),
            analytics: LocalAnalytics(maxBytes: analyticsBytes), lifecycle: rooms)
    }

    /// The Redis bus: one `RedisBus` on `loop` carries every role.
    public static func redis(_ bus: RedisBus) -> ClusterServices {
        var services = ClusterServices(rooms: bus, presence: bus, registry: bus, analytics: bus, lifecycle: bus, control: bus, history: bus)
        services.sessions = bus
        return services
    }

    /// The Redis Cluster bus: one `RedisClusterBus` carries every role (rooms, presence, registry and drain,
    /// analytics, server API control and history, session records).
    public static func redisCluster(_ bus: RedisClusterBus) -> ClusterServices {
        var services = ClusterServices(rooms: bus, presence: bus, registry: bus, analytics: bus, lifecycle: bus, control: bus, history: bus)
        services.sessions = bus
        return services
    }
}
