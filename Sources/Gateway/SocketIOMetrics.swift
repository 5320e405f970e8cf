import Runtime

/// Socket.IO counters of one loop (summed on scrape), exported with `protocol="socketio"` so an operator
/// sees that population beside the native one. Loop-confined writes, relaxed reads.
public final class SocketIOLoopMetrics: Sendable {
    /// Sessions started (open packet sent).
    public let sessionsOpened = Counter()
    /// Sessions currently open (a gauge kept as a counter that goes down).
    public let sessionsOpen = Counter()
    /// Session closes by `SocketIOCloseReason.label` (and `token_expired`), in ``closeReasons`` order.
    public let closes: [Counter] = SocketIOLoopMetrics.closeReasons.map { _ in Counter() }
    static let closeReasons = [
        "ping_timeout", "connect_timeout", "client_closed", "engineio_error", "socketio_error", "unexpected_packet", "server_closed",
        "token_expired"
    ]
    /// Engine.IO HTTP errors by reference code 0...5 (index = code).
    public let httpErrors: [Counter] = (0...5).map { _ in Counter() }
    /// Namespace CONNECTs answered `40`.
    public let connectsAccepted = Counter()
    /// Namespace CONNECTs answered CONNECT_ERROR `44` by the gateway (a refused token; an unconfigured
    /// namespace is answered by the session and not counted here).
    public let connectsRefused = Counter()
    /// Recovery requests (`pid` in the CONNECT) that found a record.
    public let recovered = Counter()
    /// Recovery requests whose `pid` had no record (unknown, expired, another user's).
    public let notRecovered = Counter()
    /// Recovery records written as sessions ended.
    public let recordsWritten = Counter()
    /// Non-room events handed to the backend event proxy.
    public let eventsForwarded = Counter()
    /// Non-room events refused for want of a proxy (error ack when they had an ack id).
    public let eventsRefused = Counter()
    /// Error acks for room ops and events (sent or, without an ack id, only counted).
    public let errorAcks = Counter()
    /// Packets a session dropped without closing (duplicate or unknown acks, packets for a namespace not
    /// connected, repeated CONNECTs, room ops with bad arguments), added when the session ends.
    public let ignoredPackets = Counter()

    /// Counters at zero.
    public init() {}

    func countClose(_ label: String) {
        if let i = Self.closeReasons.firstIndex(of: label) { closes[i].add() }
    }

    func countHTTPError(_ code: Int) {
        if httpErrors.indices.contains(code) { httpErrors[code].add() }
    }

    func countRecovery(_ found: Bool) { (found ? recovered : notRecovered).add() }
}

extension GatewayNode {
    /// The Socket.IO families of the Prometheus exposition (written by `metricsText()`), all labelled
    /// `protocol="socketio"`.
    func writeSocketIOMetrics(to w: inout PrometheusWriter) {
        func sum(_ f: (SocketIOLoopMetrics) -> Counter) -> Int { loops.reduce(0) { $0 + f($1.metrics.socketIO).load() } }
        let p = "protocol=\"socketio\""
        w.family(
            "switchboard_protocol_sessions_open", .gauge, "Sessions of a protocol personality currently open (Socket.IO: Engine.IO sessions).",
            [(labels: "{\(p)}", value: sum { $0.sessionsOpen })])
        w.family(
            "switchboard_protocol_sessions_total", .counter, "Sessions of a protocol personality started.",
            [(labels: "{\(p)}", value: sum { $0.sessionsOpened })])
        w.family(
            "switchboard_protocol_sessions_closed_total", .counter, "Sessions of a protocol personality closed, by reason.",
            SocketIOLoopMetrics.closeReasons.enumerated().map { i, r in (labels: "{\(p),reason=\"\(r)\"}", value: sum { $0.closes[i] }) })
        w.family(
            "switchboard_protocol_http_errors_total", .counter,
            "Engine.IO requests refused with the protocol's HTTP error, by its code (5: unsupported version).",
            (0...5).map { c in (labels: "{\(p),code=\"\(c)\"}", value: sum { $0.httpErrors[c] }) })
        w.family(
            "switchboard_protocol_connects_total", .counter, "Socket.IO namespace CONNECTs, by answer.",
            [
                (labels: "{\(p),result=\"accepted\"}", value: sum { $0.connectsAccepted }),
                (labels: "{\(p),result=\"refused\"}", value: sum { $0.connectsRefused })
            ])
        w.family(
            "switchboard_protocol_recoveries_total", .counter, "Connection-state recovery requests, by whether a record was found.",
            [(labels: "{\(p),result=\"recovered\"}", value: sum { $0.recovered }), (labels: "{\(p),result=\"not_recovered\"}", value: sum { $0.notRecovered })])
        w.family(
            "switchboard_protocol_recovery_records_total", .counter, "Recovery records written as sessions ended.",
            [(labels: "{\(p)}", value: sum { $0.recordsWritten })])
        w.family(
            "switchboard_protocol_events_total", .counter,
            "Events that are not room ops, by fate (forwarded to the backend event proxy, or refused without one).",
            [(labels: "{\(p),result=\"forwarded\"}", value: sum { $0.eventsForwarded }), (labels: "{\(p),result=\"refused\"}", value: sum { $0.eventsRefused })]
        )
        w.family(
            "switchboard_protocol_ignored_packets_total", .counter,
            "Packets dropped without closing the session (duplicate or unknown acks, unconnected namespaces, repeated CONNECTs, bad room ops), counted when the session ends.",
            [(labels: "{\(p)}", value: sum { $0.ignoredPackets })])
        w.family(
            "switchboard_protocol_error_acks_total", .counter, "Room ops and events answered with an error ack (or refused without an ack id).",
            [(labels: "{\(p)}", value: sum { $0.errorAcks })])
    }
}
