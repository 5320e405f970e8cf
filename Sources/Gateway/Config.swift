import ClusterBus
import Foundation
import Glibc
import Protocol
import Runtime
import TLS

/// The effective configuration of one gateway node: every flag, with its environment-variable twin
/// (`--ws-path` / `SWITCHBOARD_WS_PATH`). Flags win over the environment, the environment over defaults.
///
/// Durations take unit suffixes (`250ms`, `5s`, `2m`, `1h`; a bare number is seconds); sizes take
/// `B`, `KiB`, `MiB`, `GiB` (a bare number is bytes). Invalid values exit non-zero with a one-line reason.
public struct Config: Sendable {
    public var host = "127.0.0.1"
    public var port = 8080
    public var wsPath = "/ws"
    public var echoPath: String? = nil
    public var adminHost = "127.0.0.1"
    public var adminPort = 9090
    public var threads = max(1, ProcessInfo.processInfo.activeProcessorCount)
    public var redisURL: String? = nil
    public var nodeID = Config.defaultNodeID()
    public var prefix = "sb:"
    /// The server API, the backend proxy and room-class metrics (`--api-key`, `--proxy-*`, `--metrics-room-class`).
    public var api = APISettings()
    /// The first `--api-key` (older callers); setting it replaces every key.
    public var apiKey: String? {
        get { api.keys.first }
        set { api.keys = newValue.map { [$0] } ?? [] }
    }
    /// `--console yes`: the operator console at `/console` on the admin port, behind the API key (AdminServer+Console.swift).
    public var console = false
    public var historySize = 1000
    /// Bytes of history kept per room, payload plus 128 B per message (`--history-bytes`; 0 = count only).
    /// In-process bus only: Redis streams are trimmed by `--history-size` alone.
    public var historyBytes = 16 << 20
    /// Bytes of history the in-process bus keeps for the whole node (`--max-history-memory`; 0 = no cap):
    /// over it the least recently published rooms lose their oldest messages first.
    public var maxHistoryMemory = 256 << 20
    /// Milliseconds a room's history lives after its last publish (`--history-ttl`; 0 = no expiry).
    public var historyTTLMs = 86_400_000
    /// Milliseconds a publish's idempotency key (client `id`, HTTP `Idempotency-Key`) answers its first
    /// offset (`--idempotency-window`; 0 = keys ignored).
    public var idempotencyWindowMs = 120_000
    /// Redis reconnect backoff: milliseconds, ceiling of the first retry (full jitter, doubling per failure).
    public var redisBackoffBaseMs = 100
    /// Redis reconnect backoff: milliseconds, longest wait between attempts.
    public var redisBackoffCapMs = 5000
    /// Redis attempt log: failed connection attempts 1...N in a row are logged, then every N-th.
    public var redisAttemptLog = 5
    /// `rediss://` certificate checks (`--redis-tls-*`, Config+RedisTLS.swift); the client pair is set from the next two.
    public var redisTLS = RedisTLSSettings()
    public var redisTLSCertificate: String? = nil
    public var redisTLSKey: String? = nil
    /// `--redis-cluster` seeds (`ip:port`), Config+RedisCluster.swift; empty = no cluster.
    public var redisClusterSeeds: [String] = []
    /// Credentials from a `redis-cluster://user:password@…` URL, sent with `AUTH` on every cluster connection.
    public var redisClusterUsername: String? = nil
    public var redisClusterPassword: String? = nil
    /// True for a `rediss-cluster://` URL: every cluster connection is TLS (`--redis-tls-*` apply).
    public var redisClusterTLS = false
    /// Milliseconds between Redis heartbeats (registry refresh, dead-node cleanup, canary).
    public var heartbeatIntervalMs = 2000
    /// Milliseconds the node's registry key lives without a heartbeat; a dead node's presence is gone within 2 × this.
    public var nodeTTLMs = 6000
    /// Bytes; RFC 6455 messages above it are closed with 1009.
    public var maxMessageSize = 1 << 20
    /// `--max-fragments`: frames one message may span (default 1,000); more closes 1008 (RFC 6455 §5.4
    /// sets no limit, but every frame costs a header parse and a rate-limit token).
    public var maxFragments = 1000
    /// `--permessage-deflate` (default yes), `--deflate-threshold` (default 128 B), `--deflate-room-contexts`
    /// (default 256 per loop) and `--deflate-room-window-bits` (default 13): RFC 7692 compression with no client
    /// context takeover; the server compresses a room message once per loop, with the room's stream (context
    /// takeover shared by the room's members) where it can, so compressors are per loop and room, never per connection.
    public var deflate = PerMessageDeflateSettings(sharedContexts: 256, sharedWindowBits: 13)
    /// Bytes of the HTTP request head (431 above it).
    public var maxHeadSize = 8192
    /// Header lines in the HTTP request head (431 above it).
    public var maxHeaderCount = 100
    /// Bytes queued for one client before it is treated as a slow consumer (close 1008).
    public var maxOutboundBytes = 1 << 20
    /// Milliseconds from accept to a complete upgrade.
    public var handshakeTimeoutMs = 5000
    /// Milliseconds from our close frame to the peer's (then the socket is closed).
    public var closeTimeoutMs = 5000
    /// Milliseconds between server pings.
    public var pingIntervalMs = 25_000
    /// Milliseconds to wait for any frame after a ping.
    public var pongTimeoutMs = 10_000
    /// Drain (SIGTERM): time for the load balancer to stop routing here before the listeners close.
    public var drainDelayMs = 5000
    /// Drain: open connections are closed (reconnect + 1012) in batches spread over this window.
    public var drainWindowMs = 20_000
    /// Drain: the process exits by then whatever is left (keep it under the orchestrator's grace period).
    public var drainDeadlineMs = 30_000
    /// Drain: nodes allowed to drain at once across the cluster (Redis semaphore).
    public var maxDraining = 1
    /// Seconds of TCP idleness before keepalive probes (0 = keepalive off); set on the listener, inherited by accepted sockets.
    public var tcpKeepaliveIdleMs = 60_000
    /// Between keepalive probes.
    public var tcpKeepaliveIntervalMs = 10_000
    /// Unanswered probes before the kernel drops the connection.
    public var tcpKeepaliveCount = 3
    /// Milliseconds with no data frame from the client before it is closed (0 = off).
    public var idleTimeoutMs = 0
    /// Open connections (handshakes included) per node; more get 503 before the upgrade.
    public var maxConnections = 100_000
    /// Rooms one connection may be in at once (`error too_many_rooms` above it).
    public var maxRoomsPerConnection = 100
    /// Inbound frames per second per connection (token bucket, burst = 2 s worth); excess closes with 1008. 0 = off.
    public var maxFrameRate = 1000
    /// Milliseconds a client may stay over `--max-outbound-bytes` before it is closed with 1008
    /// (never past 2 x the mark: memory stays bounded).
    public var slowConsumerGraceMs = 1000
    /// Peers whose `X-Request-ID` / `X-Forwarded-For` are believed (IPv4 addresses and CIDR blocks).
    public var trustedProxies = TrustedProxies("")!
    var trustedProxiesText = ""
    /// `Strict-Transport-Security` max-age in seconds on HTTP answers (0 = not sent): set it when a TLS
    /// proxy fronts the node.
    public var hstsMaxAge = 0
    /// Analytics events per second per connection and per user (shared by all nodes through Redis).
    public var analyticsRate = 10.0
    /// Analytics bucket capacity (events).
    public var analyticsBurst = 20
    /// The analytics stream is trimmed to about this many entries (`MAXLEN ~`); LocalBus keeps a ring this size.
    public var analyticsStreamSize = 100_000
    /// Bytes of events the in-process analytics ring keeps (`--analytics-bytes`; 0 = count only). Not
    /// applied to the Redis stream, which is trimmed by count.
    public var analyticsBytes = 64 << 20
    public var logLevel = LogLevel.info
    public var subprotocols: [String] = []
    public var pinCPU: Int? = nil
    /// Authentication, Origin and per-IP admission (flags in Auth/AuthSettings.swift).
    public var auth = AuthSettings()
    /// Socket.IO: the endpoint (off by default), event names, Engine.IO heartbeat, recovery (SocketIOSettings.swift).
    public var socketIO = SocketIOSettings()
    /// `--tls-cert` PEM chains for the public port, paired in order with `tlsKeys`; the first is the default,
    /// the others are chosen by SNI. Empty = plain `ws://`.
    public var tlsCertificates: [String] = []
    /// `--tls-key` PEM private keys, one per `tlsCertificates` entry.
    public var tlsKeys: [String] = []
    /// `--tls-min-version`: the lowest TLS version accepted on both ports.
    public var tlsMinimumVersion = TLSVersion.tls12
    /// `--tls-reload-interval` in milliseconds: how often the certificate and key files are `stat`ed; a change
    /// seen on two polls in a row reloads them as SIGHUP does (0 = SIGHUP only).
    public var tlsReloadIntervalMs = 10_000
    /// `--admin-tls-cert` / `--admin-tls-key`: HTTPS on the admin port (unset = plain HTTP).
    public var adminTLSCertificate: String? = nil
    public var adminTLSKey: String? = nil
    /// The public port's certificates, loaded and checked by `parse` (nil = plain). SIGHUP reloads from the paths.
    public var tls: TLSContext? = nil
    /// The admin port's certificate, loaded and checked by `parse` (nil = plain HTTP).
    public var adminTLS: TLSContext? = nil

    /// The certificate pairs of the public port, in flag order.
    public var tlsPairs: [TLSCertificatePair] {
        zip(tlsCertificates, tlsKeys).map { TLSCertificatePair(certificatePath: $0.0, keyPath: $0.1) }
    }

    /// The admin port's certificate pair, when set.
    public var adminTLSPair: TLSCertificatePair? {
        guard let c = adminTLSCertificate, let k = adminTLSKey else { return nil }
        return TLSCertificatePair(certificatePath: c, keyPath: k)
    }

    /// `hostname-pid`.
    public static func defaultNodeID() -> String {
        var buf = [UInt8](repeating: 0, count: 256)
        gethostname(&buf, buf.count)
        let name = String(decoding: buf.prefix { $0 != 0 }, as: UTF8.self)
        return "\(name)-\(getpid())"
    }

    /// A configuration failure: the message is printed as one line and the process exits 2.
    public struct Invalid: Error, CustomStringConvertible, Sendable {
        public let description: String
    }

    enum Kind { case string, int, duration, size, flag, list, level }

    struct Option {
        let name: String
        let kind: Kind
        let help: String
        let apply: @Sendable (inout Config, String) throws(Invalid) -> Void
        let current: @Sendable (Config) -> String
        var secret = false
        /// Repeatable flags: clears the value (from the environment) before the first occurrence on the command line.
        var reset: (@Sendable (inout Config) -> Void)? = nil
        var env: String { "SWITCHBOARD_" + name.uppercased().replacingOccurrences(of: "-", with: "_") }
    }

    private static let options: [Option] =
        [
            Option(
                name: "host", kind: .string, help: "address the WebSocket listener binds (0.0.0.0 in containers)",
                apply: { c, v in c.host = v }, current: { $0.host }),
            Option(
                name: "port", kind: .int, help: "WebSocket listener port",
                apply: { c, v throws(Invalid) in c.port = try port(v, "port") }, current: { "\($0.port)" }),
            Option(
                name: "ws-path", kind: .string, help: "path of the room protocol endpoint",
                apply: { c, v throws(Invalid) in c.wsPath = try path(v, "ws-path") }, current: { $0.wsPath }),
            Option(
                name: "echo-path", kind: .string, help: "path that echoes every message verbatim, for conformance runs (unset = off)",
                apply: { c, v throws(Invalid) in c.echoPath = v.isEmpty ? nil : try path(v, "echo-path") }, current: { $0.echoPath ?? "" }),
            Option(
                name: "admin-host", kind: .string, help: "address the admin listener binds (/health, /ready, /metrics, the server API /api/<method>, /console)",
                apply: { c, v in c.adminHost = v }, current: { $0.adminHost }),
            Option(
                name: "admin-port", kind: .int, help: "admin listener port (0 = off)",
                apply: { c, v throws(Invalid) in c.adminPort = try port(v, "admin-port", allowZero: true) }, current: { "\($0.adminPort)" }),
            Option(
                name: "threads", kind: .int, help: "event loops (one per core)",
                apply: { c, v throws(Invalid) in c.threads = try int(v, "threads", 1...64) }, current: { "\($0.threads)" }),
            Option(
                name: "redis-url", kind: .string,
                help:
                    "redis://host:port/db for the cluster bus (rediss:// for TLS, redis-cluster://host:port,… for Redis Cluster, rediss-cluster:// with TLS; unset = in-process bus, single node)",
                apply: { c, v throws(Invalid) in
                    guard !v.isEmpty else { c.redisURL = nil; return }
                    if isClusterURL(v) { return try applyClusterURL(&c, v) }
                    do throws(RedisEndpoint.Invalid) { _ = try RedisEndpoint(url: v) } catch { throw Invalid(description: "--redis-url: \(error.description)") }
                    c.redisURL = v
                }, current: { c in c.redisURL.map { (try? RedisEndpoint(url: $0))?.description ?? $0 } ?? "" }),
            Option(
                name: "redis-backoff-base", kind: .duration,
                help: "Redis reconnect: ceiling of the first retry's random delay (doubles per failure, full jitter)",
                apply: { c, v throws(Invalid) in c.redisBackoffBaseMs = try duration(v, "redis-backoff-base") }, current: { "\($0.redisBackoffBaseMs)ms" }),
            Option(
                name: "redis-backoff-cap", kind: .duration, help: "Redis reconnect: longest delay between attempts",
                apply: { c, v throws(Invalid) in c.redisBackoffCapMs = try duration(v, "redis-backoff-cap") }, current: { "\($0.redisBackoffCapMs)ms" }),
            Option(
                name: "redis-attempt-log", kind: .int, help: "Redis reconnect: log failed attempts 1...N of an outage, then every N-th (1 = all)",
                apply: { c, v throws(Invalid) in c.redisAttemptLog = try int(v, "redis-attempt-log", 1...1_000_000) }, current: { "\($0.redisAttemptLog)" }),
            Option(
                name: "heartbeat-interval", kind: .duration, help: "Redis heartbeat: registry refresh, dead-node cleanup and bus canary",
                apply: { c, v throws(Invalid) in c.heartbeatIntervalMs = try duration(v, "heartbeat-interval") }, current: { "\($0.heartbeatIntervalMs)ms" }),
            Option(
                name: "node-ttl", kind: .duration, help: "lifetime of the node's registry key without a heartbeat (dead nodes' presence is removed within 2x)",
                apply: { c, v throws(Invalid) in c.nodeTTLMs = try duration(v, "node-ttl") }, current: { "\($0.nodeTTLMs)ms" }),
            Option(
                name: "node-id", kind: .string, help: "this node's id in the cluster (default hostname-pid)",
                apply: { c, v in c.nodeID = v }, current: { $0.nodeID }),
            Option(
                name: "prefix", kind: .string, help: "Redis key and channel prefix",
                apply: { c, v in c.prefix = v }, current: { $0.prefix }),
            Option(
                name: "history-size", kind: .int, help: "messages kept per room for resume (join since)",
                apply: { c, v throws(Invalid) in c.historySize = try int(v, "history-size", 0...10_000_000) }, current: { "\($0.historySize)" }),
            Option(
                name: "history-bytes", kind: .size,
                help: "bytes of history kept per room, payload + 128 B per message, in-process bus (Redis: by count only; 0: count only)",
                apply: { c, v throws(Invalid) in c.historyBytes = try size(v, "history-bytes", allowZero: true) }, current: { "\($0.historyBytes)B" }),
            Option(
                name: "max-history-memory", kind: .size,
                help: "bytes of history the in-process bus keeps for the node; over it the least recently published rooms lose history first (0: no cap)",
                apply: { c, v throws(Invalid) in c.maxHistoryMemory = try size(v, "max-history-memory", allowZero: true) },
                current: { "\($0.maxHistoryMemory)B" }),
            Option(
                name: "history-ttl", kind: .duration, help: "a room's history is dropped this long after its last publish (0: never)",
                apply: { c, v throws(Invalid) in c.historyTTLMs = try duration(v, "history-ttl", in: 0...Int.max) }, current: { "\($0.historyTTLMs)ms" }),
            Option(
                name: "idempotency-window", kind: .duration,
                help: "a publish retried with the same id (HTTP: Idempotency-Key) within this window is stored once and answers the first offset (0: off)",
                apply: { c, v throws(Invalid) in c.idempotencyWindowMs = try duration(v, "idempotency-window", in: 0...86_400_000) },
                current: { "\($0.idempotencyWindowMs)ms" }),
            Option(
                name: "max-message-size", kind: .size, help: "largest message a client may send (close 1009 above it)",
                apply: { c, v throws(Invalid) in c.maxMessageSize = try size(v, "max-message-size") }, current: { "\($0.maxMessageSize)B" }),
            Option(
                name: "max-fragments", kind: .int, help: "frames one message may span (close 1008 above it)",
                apply: { c, v throws(Invalid) in c.maxFragments = try int(v, "max-fragments", 1...1_000_000) }, current: { "\($0.maxFragments)" }),
            Option(
                name: "permessage-deflate", kind: .flag, help: "yes/no: offer RFC 7692 compression (no zlib memory per connection)",
                apply: { c, v throws(Invalid) in c.deflate.isEnabled = try yesNo(v, "permessage-deflate") }, current: { $0.deflate.isEnabled ? "yes" : "no" }),
            Option(
                name: "deflate-threshold", kind: .size, help: "messages shorter than this are sent uncompressed",
                apply: { c, v throws(Invalid) in c.deflate.threshold = try size(v, "deflate-threshold") }, current: { "\($0.deflate.threshold)B" }),
            Option(
                name: "deflate-room-contexts", kind: .int,
                help: "rooms per loop whose messages are compressed with context takeover, shared by their members (about 46 KiB each; 0 = each message alone)",
                apply: { c, v throws(Invalid) in c.deflate.sharedContexts = try int(v, "deflate-room-contexts", 0...1_000_000) },
                current: { "\($0.deflate.sharedContexts)" }),
            Option(
                name: "deflate-room-window-bits", kind: .int, help: "LZ77 window of a room's compressor, 9...15 (memory 2^(bits+2) B + 14 KiB)",
                apply: { c, v throws(Invalid) in c.deflate.sharedWindowBits = try int(v, "deflate-room-window-bits", 9...15) },
                current: { "\($0.deflate.sharedWindowBits)" }),
            Option(
                name: "max-head-size", kind: .size, help: "largest HTTP request head (431 above it)",
                apply: { c, v throws(Invalid) in c.maxHeadSize = try size(v, "max-head-size") }, current: { "\($0.maxHeadSize)B" }),
            Option(
                name: "max-outbound-bytes", kind: .size, help: "bytes queued for one client before it is closed as a slow consumer (4004)",
                apply: { c, v throws(Invalid) in c.maxOutboundBytes = try size(v, "max-outbound-bytes") }, current: { "\($0.maxOutboundBytes)B" }),
            Option(
                name: "handshake-timeout", kind: .duration, help: "time from accept to a complete upgrade",
                apply: { c, v throws(Invalid) in c.handshakeTimeoutMs = try duration(v, "handshake-timeout") }, current: { "\($0.handshakeTimeoutMs)ms" }),
            Option(
                name: "close-timeout", kind: .duration, help: "time from our close frame to the peer's before the socket is closed",
                apply: { c, v throws(Invalid) in c.closeTimeoutMs = try duration(v, "close-timeout") }, current: { "\($0.closeTimeoutMs)ms" }),
            Option(
                name: "ping-interval", kind: .duration, help: "interval between server pings",
                apply: { c, v throws(Invalid) in c.pingIntervalMs = try duration(v, "ping-interval") }, current: { "\($0.pingIntervalMs)ms" }),
            Option(
                name: "pong-timeout", kind: .duration, help: "time to wait for any frame after a ping before the client is reaped",
                apply: { c, v throws(Invalid) in c.pongTimeoutMs = try duration(v, "pong-timeout") }, current: { "\($0.pongTimeoutMs)ms" }),
            Option(
                name: "drain-delay", kind: .duration, help: "on SIGTERM: time for the load balancer to stop routing here before the listeners close",
                apply: { c, v throws(Invalid) in c.drainDelayMs = try duration(v, "drain-delay", in: 0...Int.max) }, current: { "\($0.drainDelayMs)ms" }),
            Option(
                name: "drain-window", kind: .duration, help: "on SIGTERM: clients are told to reconnect and closed (1012) in batches over this window",
                apply: { c, v throws(Invalid) in c.drainWindowMs = try duration(v, "drain-window", in: 0...Int.max) }, current: { "\($0.drainWindowMs)ms" }),
            Option(
                name: "drain-deadline", kind: .duration, help: "on SIGTERM: exit by then whatever is left (under the orchestrator's grace period)",
                apply: { c, v throws(Invalid) in c.drainDeadlineMs = try duration(v, "drain-deadline") }, current: { "\($0.drainDeadlineMs)ms" }),
            Option(
                name: "max-draining", kind: .int, help: "nodes that may drain at once across the cluster (Redis semaphore)",
                apply: { c, v throws(Invalid) in c.maxDraining = try int(v, "max-draining", 1...1000) }, current: { "\($0.maxDraining)" }),
            Option(
                name: "subprotocols", kind: .list, help: "comma list of Sec-WebSocket-Protocol values to accept",
                apply: { c, v in c.subprotocols = v.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty } },
                current: { $0.subprotocols.joined(separator: ",") }),
            Option(
                name: "tcp-keepalive-idle", kind: .duration, help: "TCP idle time before keepalive probes (0 = off)",
                apply: { c, v throws(Invalid) in c.tcpKeepaliveIdleMs = try duration(v, "tcp-keepalive-idle", in: 0...Int.max) },
                current: { "\($0.tcpKeepaliveIdleMs)ms" }),
            Option(
                name: "tcp-keepalive-interval", kind: .duration, help: "time between TCP keepalive probes",
                apply: { c, v throws(Invalid) in c.tcpKeepaliveIntervalMs = try duration(v, "tcp-keepalive-interval") },
                current: { "\($0.tcpKeepaliveIntervalMs)ms" }),
            Option(
                name: "tcp-keepalive-count", kind: .int, help: "unanswered TCP keepalive probes before the kernel drops the connection",
                apply: { c, v throws(Invalid) in c.tcpKeepaliveCount = try int(v, "tcp-keepalive-count", 1...100) }, current: { "\($0.tcpKeepaliveCount)" }),
            Option(
                name: "idle-timeout", kind: .duration, help: "close a client that sent no data frame for this long (0 = off)",
                apply: { c, v throws(Invalid) in c.idleTimeoutMs = try duration(v, "idle-timeout", in: 0...Int.max) }, current: { "\($0.idleTimeoutMs)ms" }),
            Option(
                name: "max-connections", kind: .int, help: "open connections per node; more get 503 before the upgrade",
                apply: { c, v throws(Invalid) in c.maxConnections = try int(v, "max-connections", 1...10_000_000) }, current: { "\($0.maxConnections)" }),
            Option(
                name: "max-rooms-per-connection", kind: .int, help: "rooms one connection may be in (error too_many_rooms above it)",
                apply: { c, v throws(Invalid) in c.maxRoomsPerConnection = try int(v, "max-rooms-per-connection", 1...100_000) },
                current: { "\($0.maxRoomsPerConnection)" }),
            Option(
                name: "max-frame-rate", kind: .int,
                help: "inbound frames/s per connection on the room path, burst 2 s worth; excess closes with 1008 (0 = off)",
                apply: { c, v throws(Invalid) in c.maxFrameRate = try int(v, "max-frame-rate", 0...10_000_000) }, current: { "\($0.maxFrameRate)" }),
            Option(
                name: "slow-consumer-grace", kind: .duration,
                help: "how long a client may stay over --max-outbound-bytes (never past twice it) before close 4004",
                apply: { c, v throws(Invalid) in c.slowConsumerGraceMs = try duration(v, "slow-consumer-grace", in: 0...Int.max) },
                current: { "\($0.slowConsumerGraceMs)ms" }),
            Option(
                name: "trusted-proxies", kind: .list, help: "comma list of proxy IPv4 addresses/CIDRs whose X-Request-ID and X-Forwarded-For are believed",
                apply: { c, v throws(Invalid) in
                    guard let t = TrustedProxies(v) else { throw Invalid(description: "--trusted-proxies: expected IPv4 addresses or CIDR blocks, got '\(v)'") }
                    c.trustedProxies = t
                    c.trustedProxiesText = v
                }, current: { $0.trustedProxiesText }),
            Option(
                name: "hsts-max-age", kind: .duration,
                help: "send Strict-Transport-Security with this max-age on HTTP answers, when TLS terminates in front (0 = off)",
                apply: { c, v throws(Invalid) in c.hstsMaxAge = try duration(v, "hsts-max-age", in: 0...Int.max) / 1000 },
                current: { $0.hstsMaxAge == 0 ? "0" : "\($0.hstsMaxAge)s" }),
            Option(
                name: "tls-cert", kind: .list,
                help:
                    "PEM certificate chain (leaf first) for wss:// on the public port; repeatable with --tls-key, the first pair is the default, others are picked by SNI (unset = plain ws://)",
                apply: { c, v in c.tlsCertificates += listItems(v) }, current: { $0.tlsCertificates.joined(separator: ",") }, reset: { $0.tlsCertificates = [] }
            ),
            Option(
                name: "tls-key", kind: .list, help: "PEM private key of the --tls-cert in the same position; repeatable",
                apply: { c, v in c.tlsKeys += listItems(v) }, current: { $0.tlsKeys.joined(separator: ",") }, reset: { $0.tlsKeys = [] }),
            Option(
                name: "tls-min-version", kind: .string, help: "lowest TLS version accepted: 1.2 or 1.3",
                apply: { c, v throws(Invalid) in
                    guard let t = TLSVersion(rawValue: v.trimmingCharacters(in: .whitespaces)) else {
                        throw Invalid(description: "--tls-min-version: expected 1.2 or 1.3, got '\(v)'")
                    }
                    c.tlsMinimumVersion = t
                }, current: { $0.tlsMinimumVersion.rawValue }),
            Option(
                name: "tls-reload-interval", kind: .duration,
                help: "poll the certificate and key files this often and reload them when they changed, as SIGHUP does (0 = SIGHUP only)",
                apply: { c, v throws(Invalid) in c.tlsReloadIntervalMs = try duration(v, "tls-reload-interval", in: 0...Int.max) },
                current: { "\($0.tlsReloadIntervalMs)ms" }),
            Option(
                name: "admin-tls-cert", kind: .string, help: "PEM certificate chain for HTTPS on the admin port (with --admin-tls-key; unset = plain HTTP)",
                apply: { c, v in c.adminTLSCertificate = v.isEmpty ? nil : v }, current: { $0.adminTLSCertificate ?? "" }),
            Option(
                name: "admin-tls-key", kind: .string, help: "PEM private key of --admin-tls-cert",
                apply: { c, v in c.adminTLSKey = v.isEmpty ? nil : v }, current: { $0.adminTLSKey ?? "" }),
            Option(
                name: "analytics-rate", kind: .int, help: "analytics events/s per connection and per user (across the cluster)",
                apply: { c, v throws(Invalid) in c.analyticsRate = Double(try int(v, "analytics-rate", 1...1_000_000)) },
                current: { "\(Int($0.analyticsRate))" }),
            Option(
                name: "analytics-burst", kind: .int, help: "analytics bucket capacity (events)",
                apply: { c, v throws(Invalid) in c.analyticsBurst = try int(v, "analytics-burst", 1...1_000_000) }, current: { "\($0.analyticsBurst)" }),
            Option(
                name: "analytics-stream-size", kind: .int, help: "analytics stream length kept (MAXLEN ~; the in-process ring size without Redis)",
                apply: { c, v throws(Invalid) in c.analyticsStreamSize = try int(v, "analytics-stream-size", 1...100_000_000) },
                current: { "\($0.analyticsStreamSize)" }),
            Option(
                name: "analytics-bytes", kind: .size, help: "bytes of events the in-process analytics ring keeps (Redis stream: by count only; 0: count only)",
                apply: { c, v throws(Invalid) in c.analyticsBytes = try size(v, "analytics-bytes", allowZero: true) }, current: { "\($0.analyticsBytes)B" }),
            Option(
                name: "log-level", kind: .level, help: "debug, info, warn or error",
                apply: { c, v throws(Invalid) in
                    guard let l = LogLevel(rawValue: v.lowercased()) else {
                        throw Invalid(description: "--log-level: expected debug, info, warn or error, got '\(v)'")
                    }
                    c.logLevel = l
                }, current: { $0.logLevel.rawValue }),
            Option(
                name: "pin-cpu", kind: .int, help: "pin the process to this CPU (benchmarks; unset = no pinning)",
                apply: { c, v throws(Invalid) in c.pinCPU = v.isEmpty ? nil : try int(v, "pin-cpu", 0...4096) }, current: { $0.pinCPU.map(String.init) ?? "" })
        ] + authOptions + apiOptions + consoleOptions + socketIOOptions + redisTLSOptions + redisClusterOptions

    public init() {}

    /// Parses `arguments` (without the program name) over the environment. `--help` is handled by the caller.
    /// Errors: `Invalid` naming the flag and what it expected.
    public static func parse(arguments: [String], environment: [String: String]) throws(Invalid) -> Config {
        var config = Config()
        for o in options {
            if let v = environment[o.env] { try o.apply(&config, v) }
        }
        var i = 0
        var resetDone = Set<String>()
        while i < arguments.count {
            let arg = arguments[i]
            guard arg.hasPrefix("--") else { throw Invalid(description: "unexpected argument '\(arg)' (see --help)") }
            var name = String(arg.dropFirst(2))
            var value: String? = nil
            if let eq = name.firstIndex(of: "=") {
                value = String(name[name.index(after: eq)...])
                name = String(name[..<eq])
            }
            guard let o = options.first(where: { $0.name == name }) else { throw Invalid(description: "unknown flag --\(name) (see --help)") }
            if value == nil {
                i += 1
                guard i < arguments.count else { throw Invalid(description: "--\(name) needs a value") }
                value = arguments[i]
            }
            if let reset = o.reset, resetDone.insert(o.name).inserted { reset(&config) }
            try o.apply(&config, value!)
            i += 1
        }
        if config.echoPath == config.wsPath { throw Invalid(description: "--echo-path must differ from --ws-path") }
        try finalizeAuth(&config)
        try finalizeSocketIO(&config)
        try finalizeTLS(&config)
        try finalizeAPI(&config)
        try finalizeRedisTLS(&config)
        try finalizeRedisCluster(&config)
        if config.nodeTTLMs <= config.heartbeatIntervalMs {
            throw Invalid(description: "--node-ttl (\(config.nodeTTLMs)ms) must exceed --heartbeat-interval (\(config.heartbeatIntervalMs)ms)")
        }
        if config.redisBackoffCapMs < config.redisBackoffBaseMs {
            throw Invalid(
                description: "--redis-backoff-cap (\(config.redisBackoffCapMs)ms) must be at least --redis-backoff-base (\(config.redisBackoffBaseMs)ms)")
        }
        if config.drainDelayMs + config.drainWindowMs >= config.drainDeadlineMs {
            throw Invalid(
                description:
                    "--drain-deadline (\(config.drainDeadlineMs)ms) must exceed --drain-delay + --drain-window (\(config.drainDelayMs + config.drainWindowMs)ms)"
            )
        }
        return config
    }

    /// `--help` text: every flag with its environment twin, default and unit.
    public static var helpText: String {
        let d = Config()
        var s = """
            switchboard: a WebSocket gateway node (RFC 6455) with rooms and a cluster bus.

            Usage: switchboard [--flag value | --flag=value]...
            Every flag has an environment twin (SWITCHBOARD_<FLAG>); flags win. Durations: 250ms, 5s, 2m, 1h.
            Sizes: 512B, 64KiB, 1MiB, 1GiB.
            switchboard --health-check asks the configured admin port's /health once (exit 0 on 200): the
            container image's HEALTHCHECK.
            switchboard --version prints the version; switchboard ctl --help lists the server API's commands.

            """
        for o in options {
            let def = helpDefault(o, d.display(o))
            let flag = "  --\(o.name)"
            s += flag.padding(toLength: max(24, flag.count + 2), withPad: " ", startingAt: 0)  // long names are not cut
            s += "\(o.help) [env \(o.env)\(def.isEmpty ? "" : ", default \(def)")]\n"
        }
        return s
    }

    /// A default as the README writes it: durations in the largest unit that keeps them whole (`24h`, `5s`,
    /// `1.5s`), sizes in the largest binary unit that does (`1MiB`, `8KiB`); both parse back to the same value.
    private static func helpDefault(_ o: Option, _ value: String) -> String {
        switch o.kind {
        case .duration:
            guard value.hasSuffix("ms"), let ms = Int(value.dropLast(2)) else { return value }
            return formatDuration(milliseconds: ms)
        case .size:
            guard value.hasSuffix("B"), let bytes = Int(value.dropLast()) else { return value }
            return formatSize(bytes: bytes)
        default:
            return value
        }
    }

    /// `86_400_000` → `24h`, `90_000` → `90s`, `1_500` → `1.5s`, `250` → `250ms`, `0` → `0`. Round-trips through
    /// ``parseDuration(_:)``.
    static func formatDuration(milliseconds ms: Int) -> String {
        if ms == 0 { return "0" }
        for (suffix, unit) in [("h", 3_600_000), ("m", 60_000), ("s", 1000)] where ms % unit == 0 {
            return "\(ms / unit)\(suffix)"
        }
        if ms >= 1000 && ms % 100 == 0 { return "\(ms / 1000).\(ms % 1000 / 100)s" }
        return "\(ms)ms"
    }

    /// `1_048_576` → `1MiB`, `8192` → `8KiB`, `1000` → `1000B`. Round-trips through ``parseSize(_:)``.
    static func formatSize(bytes: Int) -> String {
        if bytes == 0 { return "0B" }
        for (suffix, unit) in [("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)] where bytes % unit == 0 {
            return "\(bytes / unit)\(suffix)"
        }
        return "\(bytes)B"
    }

    private func display(_ o: Option) -> String {
        let v = o.current(self)
        return o.secret && !v.isEmpty ? "***" : v
    }

    /// The effective configuration as JSON-ready pairs, secrets masked (for the startup log line).
    public var loggable: [(String, String)] {
        Config.options.map { ($0.name, display($0)) }
    }

    /// Checks the TLS flags and loads the certificates, so a missing file or a key that is not the
    /// certificate's stops startup with one line (exit 2) instead of failing every handshake later.
    static func finalizeTLS(_ c: inout Config) throws(Invalid) {
        guard c.tlsCertificates.count == c.tlsKeys.count else {
            throw Invalid(description: "--tls-cert and --tls-key come in pairs: got \(c.tlsCertificates.count) certificate(s) and \(c.tlsKeys.count) key(s)")
        }
        guard (c.adminTLSCertificate == nil) == (c.adminTLSKey == nil) else {
            throw Invalid(description: "--admin-tls-cert and --admin-tls-key must be given together")
        }
        c.tls = nil
        c.adminTLS = nil
        do throws(TLSConfigurationError) {
            if !c.tlsPairs.isEmpty { c.tls = try TLSContext(pairs: c.tlsPairs, minimumVersion: c.tlsMinimumVersion) }
        } catch {
            throw Invalid(description: "--tls-cert/--tls-key: \(error.description)")
        }
        do throws(TLSConfigurationError) {
            if let pair = c.adminTLSPair { c.adminTLS = try TLSContext(pairs: [pair], minimumVersion: c.tlsMinimumVersion) }
        } catch {
            throw Invalid(description: "--admin-tls-cert/--admin-tls-key: \(error.description)")
        }
    }

    /// Comma-separated items, trimmed, empty ones dropped (list flags and their environment twins).
    static func listItems(_ v: String) -> [String] {
        v.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
    }

    // MARK: - Value parsers

    /// An integer flag value within `range` (shared by every flag table, auth's included).
    static func int(_ v: String, _ flag: String, _ range: ClosedRange<Int>) throws(Invalid) -> Int {
        guard let n = Int(v.trimmingCharacters(in: .whitespaces)), range.contains(n) else {
            throw Invalid(description: "--\(flag): expected an integer in \(range.lowerBound)...\(range.upperBound), got '\(v)'")
        }
        return n
    }

    private static func port(_ v: String, _ flag: String, allowZero: Bool = false) throws(Invalid) -> Int {
        try int(v, flag, (allowZero ? 0 : 1)...65535)
    }

    private static func path(_ v: String, _ flag: String) throws(Invalid) -> String {
        guard v.hasPrefix("/"), !v.contains(" "), !v.contains("?") else {
            throw Invalid(description: "--\(flag): expected a path starting with '/', got '\(v)'")
        }
        return v
    }

    /// Values past this (about 285,000 years in ms, or 8 PB) are refused rather than overflowing `Int`.
    private static let largestParsed = 9e15

    /// Milliseconds from `250ms`, `5s`, `1.5s`, `2m`, `1h`, or `0`. A bare non-zero number is refused: is
    /// `5000` seconds or milliseconds? Guessing wrong turns a 5 s timeout into 83 minutes.
    public static func parseDuration(_ text: String) -> Int? {
        let t = text.trimmingCharacters(in: .whitespaces).lowercased()
        let units: [(String, Double)] = [("ms", 1), ("s", 1000), ("m", 60_000), ("h", 3_600_000)]
        for (suffix, scale) in units where t.hasSuffix(suffix) {
            guard let n = decimal(t.dropLast(suffix.count)), n * scale < largestParsed else { return nil }
            return Int((n * scale).rounded())
        }
        return decimal(Substring(t)) == 0 ? 0 : nil
    }

    /// A plain decimal number (`5`, `1.5`, `0.25`): digits with at most one point between digits. No sign,
    /// exponent, hex or `inf` (all of which `Double.init` would take).
    private static func decimal(_ text: Substring) -> Double? {
        let parts = text.split(separator: ".", maxSplits: 1, omittingEmptySubsequences: false)
        guard !parts.isEmpty, parts.allSatisfy({ !$0.isEmpty && $0.utf8.allSatisfy { $0 >= 48 && $0 <= 57 } }) else { return nil }
        return Double(text)
    }

    /// Bytes from `512B`, `64KiB`, `1MiB`, `1GiB`, `1KB`/`1MB` (taken as binary units) or a bare number of bytes.
    public static func parseSize(_ text: String) -> Int? {
        let t = text.trimmingCharacters(in: .whitespaces).lowercased()
        let units: [(String, Int)] = [
            ("kib", 1 << 10), ("mib", 1 << 20), ("gib", 1 << 30), ("kb", 1 << 10), ("mb", 1 << 20), ("gb", 1 << 30),
            ("k", 1 << 10), ("m", 1 << 20), ("g", 1 << 30), ("b", 1)
        ]
        for (suffix, scale) in units where t.hasSuffix(suffix) {
            guard let n = Double(t.dropLast(suffix.count)), n >= 0, n * Double(scale) < largestParsed else { return nil }
            return Int(n * Double(scale))
        }
        return Int(t).flatMap { $0 >= 0 && Double($0) < largestParsed ? $0 : nil }
    }

    /// A duration flag in milliseconds within `range` (default: more than zero).
    static func duration(_ v: String, _ flag: String, in range: ClosedRange<Int> = 1...Int.max) throws(Invalid) -> Int {
        guard let ms = parseDuration(v) else {
            throw Invalid(description: "--\(flag): expected a duration with a unit like 250ms, 1.5s or 2m, got '\(v)'")
        }
        guard range.contains(ms) else {
            let bounds = range.upperBound == Int.max ? "at least \(range.lowerBound)ms" : "\(range.lowerBound)ms...\(range.upperBound / 1000)s"
            throw Invalid(description: "--\(flag): '\(v)' is out of range (\(bounds))")
        }
        return ms
    }

    private static func size(_ v: String, _ flag: String, allowZero: Bool = false) throws(Invalid) -> Int {
        guard let b = parseSize(v), b > 0 || (allowZero && b == 0) else {
            throw Invalid(description: "--\(flag): expected a size like 64KiB or 1MiB\(allowZero ? " (or 0)" : ""), got '\(v)'")
        }
        return b
    }
}
