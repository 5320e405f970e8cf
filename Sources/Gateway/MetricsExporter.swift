import ClusterBus
import Foundation
import Glibc
import Runtime

extension GatewayNode {
    /// Prometheus text exposition format 0.0.4: `# HELP` and `# TYPE` for every family, `switchboard_` prefix,
    /// per-loop counters summed at scrape time.
    func metricsText() -> String {
        var w = PrometheusWriter()
        func family(_ name: String, _ kind: PrometheusWriter.Kind, _ help: String, _ samples: [(String, Double)]) {
            w.family(name, kind, help, samples.map { (labels: $0.0, value: $0.1) })
        }
        func sum(_ f: (LoopMetrics) -> Counter) -> Double { Double(loops.reduce(0) { $0 + f($1.metrics).load() }) }
        func counter(_ name: String, _ help: String, _ f: (LoopMetrics) -> Counter) { family(name, .counter, help, [("", sum(f))]) }
        func histogram(_ name: String, _ help: String, _ f: (LoopMetrics) -> LatencyHistogram) {
            w.histogram(name, help, loops.map { f($0.metrics) })
        }

        family("switchboard_connections_open", .gauge, "WebSocket connections currently open.", [("", sum { $0.connectionsOpen })])
        counter("switchboard_connections_accepted_total", "TCP connections accepted on the public port.", { $0.connectionsAccepted })
        counter("switchboard_handshakes_completed_total", "WebSocket upgrades completed (101 sent).", { $0.handshakesCompleted })
        var closed: [(String, Double)] = []
        for (i, code) in countedCloseCodes.enumerated() {
            closed.append(("{code=\"\(code)\"}", Double(loops.reduce(0) { $0 + $1.metrics.closedByCode[i].load() })))
        }
        closed.append(("{code=\"other\"}", Double(loops.reduce(0) { $0 + $1.metrics.closedByCode[countedCloseCodes.count].load() })))
        family("switchboard_connections_closed_total", .counter, "WebSocket connections closed, by close code (1006: no close frame).", closed)
        var rejected: [(String, Double)] = []
        for (i, status) in (LoopMetrics.rejectedStatuses.map(String.init) + ["other"]).enumerated() {
            rejected.append(("{status=\"\(status)\"}", Double(loops.reduce(0) { $0 + $1.metrics.rejectedByStatus[i].load() })))
        }
        family("switchboard_handshakes_rejected_total", .counter, "Upgrade requests answered with an HTTP error, by status.", rejected)
        counter("switchboard_messages_in_total", "WebSocket data messages received from clients.", { $0.messagesIn })
        counter("switchboard_messages_out_total", "WebSocket data messages queued to clients.", { $0.messagesOut })
        counter("switchboard_bytes_in_total", "Bytes read from client sockets.", { $0.bytesIn })
        counter("switchboard_bytes_out_total", "Bytes written to client sockets.", { $0.bytesOut })
        counter("switchboard_room_joins_total", "Room joins.", { $0.roomJoins })
        counter("switchboard_room_leaves_total", "Room leaves (explicit or on close).", { $0.roomLeaves })
        family("switchboard_rooms", .gauge, "Rooms with at least one member on this node.", [("", Double(hub.roomCount))])
        family(
            "switchboard_publishes_total", .counter, "Publishes accepted for the bus, by source.",
            [("{source=\"client\"}", sum { $0.publishesClient }), ("{source=\"api\"}", Double(apiPublishes.load()))])
        counter("switchboard_publish_errors_total", "Client publishes that failed (bus unavailable).", { $0.publishErrors })
        counter(
            "switchboard_slow_consumer_closes_total", "Connections closed with 1008 because their outbound queue passed the high-water mark.",
            { $0.slowConsumerCloses })
        family(
            "switchboard_reaped_connections_total", .counter, "Connections closed by a deadline, by reason.",
            [
                ("{reason=\"ping_timeout\"}", sum { $0.reapedPingTimeout }), ("{reason=\"handshake_timeout\"}", sum { $0.reapedHandshakeTimeout }),
                ("{reason=\"close_timeout\"}", sum { $0.reapedCloseTimeout }), ("{reason=\"idle_timeout\"}", sum { $0.reapedIdleTimeout })
            ])
        counter("switchboard_frame_rate_closes_total", "Connections closed with 1008 for exceeding --max-frame-rate.", { $0.frameRateCloses })
        counter(
            "switchboard_shed_frames_total", "Droppable frames (presence answers, notices) shed because the client was over the high-water mark.",
            { $0.shedFrames })
        counter("switchboard_protocol_errors_total", "Connections failed for an RFC 6455 violation.", { $0.protocolErrors })
        counter("switchboard_envelope_errors_total", "Client frames answered with an error for malformed JSON or an unknown op.", { $0.envelopeErrors })
        histogram("switchboard_bus_publish_latency_seconds", "Client publish to the bus's answer (offset assigned).", { $0.busPublishLatency })
        histogram(
            "switchboard_delivery_latency_seconds", "Bus accept (publisher's node wall clock) to fan-out on this node's loop: cross-node delivery latency.",
            { $0.deliveryLatency })
        family("switchboard_outbound_queue_bytes", .gauge, "Bytes queued for clients and not yet written.", [("", sum { $0.outboundQueueBytes })])
        family(
            "switchboard_analytics_events_total", .counter, "Analytics events by outcome: accepted into the stream, or dropped by which budget.",
            [
                ("{result=\"accepted\"}", sum { $0.analyticsAccepted }), ("{result=\"dropped_connection_rate\"}", sum { $0.analyticsDroppedConnection }),
                ("{result=\"dropped_user_rate\"}", sum { $0.analyticsDroppedUser })
            ])
        counter(
            "switchboard_analytics_throttle_notices_total", "error throttled notices sent (at most one per connection per second).", { $0.analyticsNotices })
        family("switchboard_bus_up", .gauge, "1 when the cluster bus is connected.", [("", hub.busState.load(ordering: .relaxed) ? 1 : 0)])
        family("switchboard_ready", .gauge, "1 when /ready answers 200.", [("", readinessReport().0 ? 1 : 0)])
        family("switchboard_draining", .gauge, "1 while the node drains (SIGTERM received).", [("", isDraining ? 1 : 0)])
        family(
            "switchboard_drain_phase", .gauge, "Drain progress: 0 serving, 1 waiting for a drain slot, 2 drain delay, 3 closing connections, 4 stopping.",
            [("", Double(drainPhase.load(ordering: .relaxed)))])
        family(
            "switchboard_drain_closed_total", .counter, "Connections told to reconnect and closed (1012) by the drain.",
            [("", Double(drainClosed.load(ordering: .relaxed)))])
        let outboundBytes = sum { $0.outboundQueueBytes }
        family(
            "switchboard_memory_bytes", .gauge,
            "Where memory goes, by area: room history held in process, outbound queues, the in-process analytics ring, and an estimate for connections (open sockets x \(GatewayNode.estimatedBytesPerConnection) B).",
            [
                ("{area=\"history\"}", Double(rooms.historyMemoryBytes)), ("{area=\"outbound_queues\"}", outboundBytes),
                ("{area=\"analytics\"}", Double(analytics.analyticsMemoryBytes)),
                ("{area=\"connections\"}", Double(socketCount.load(ordering: .relaxed) * GatewayNode.estimatedBytesPerConnection))
            ])
        family(
            "switchboard_history_evictions_total", .counter,
            "Messages dropped from room history by --max-history-memory (least recently published rooms first); a resume into them answers recovered false.",
            [("", Double(rooms.historyEvictions))])
        family(
            "switchboard_deflate_room_contexts", .gauge,
            "permessage-deflate room streams (one compressor with context takeover per room and loop, at most --deflate-room-contexts per loop).",
            [("", sum { $0.deflateRoomContexts })])
        family(
            "switchboard_deflate_room_context_bytes", .gauge, "zlib memory held by permessage-deflate room streams.", [("", sum { $0.deflateRoomContextBytes })]
        )
        family(
            "switchboard_deflate_room_context_resets_total", .counter,
            "Room-stream messages compressed from an empty window (a stream's first, or a reset so members out of step can join).",
            [("", sum { $0.deflateContextResets })])
        family(
            "switchboard_deflate_deliveries_total", .counter,
            "Compressed room messages queued, by the compressor: context=\"room\" the room stream's frame, context=\"none\" a copy compressed alone.",
            [("{context=\"room\"}", sum { $0.deflateSharedDeliveries }), ("{context=\"none\"}", sum { $0.deflateAloneDeliveries })])
        registry.writeMetrics(to: &w)
        (rooms as? RedisClusterBus)?.writeClusterMetrics(to: &w)
        roomClasses.write(to: &w)
        proxy?.write(to: &w)
        writeAuthMetrics(to: &w)
        writeSocketIOMetrics(to: &w)
        writeTLSMetrics(to: &w)
        let proc = ProcessStats.read()
        family("switchboard_process_resident_memory_bytes", .gauge, "Resident set size (/proc/self/statm).", [("", Double(proc.rssBytes))])
        family("switchboard_process_open_fds", .gauge, "Open file descriptors (/proc/self/fd).", [("", Double(proc.openFDs))])
        family("switchboard_process_cpu_seconds_total", .counter, "User and system CPU time (/proc/self/stat).", [("", proc.cpuSeconds)])
        family("switchboard_process_start_time_seconds", .gauge, "Seconds since the node started.", [("", uptimeSeconds.rounded())])
        family("switchboard_build_info", .gauge, "Build information.", [("{version=\"\(switchboardVersion)\",swift=\"6\"}", 1)])
        return w.text
    }
}

extension GatewayNode {
    /// The per-connection figure behind `switchboard_memory_bytes{area="connections"}`: an idle
    /// connection's RSS as measured in docs/benchmarks.md ("Idle connections": 1.00 KiB each at 10,000).
    /// An estimate, not a measurement: a connection assembling a large message holds up to
    /// `--max-message-size` more, and kernel socket buffers are not in RSS.
    static let estimatedBytesPerConnection = 1024
}

/// The version reported by `--version` and `switchboard_build_info`.
public let switchboardVersion = "0.1.0"

/// Process statistics from /proc (Linux).
public struct ProcessStats: Sendable {
    public var rssBytes: Int
    public var openFDs: Int
    public var cpuSeconds: Double

    /// Reads /proc/self; fields that cannot be read are 0.
    public static func read(pid: String = "self") -> ProcessStats {
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        var rss = 0
        if let s = try? String(contentsOfFile: "/proc/\(pid)/statm", encoding: .utf8) {
            let parts = s.split(separator: " ")
            if parts.count > 1, let pages = Int(parts[1]) { rss = pages * page }
        }
        let fds = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd").count) ?? 0
        var cpu = 0.0
        if let s = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8), let close = s.lastIndex(of: ")") {
            let fields = s[s.index(after: close)...].split(separator: " ")
            // After the command: state(0) ... utime is field 14 overall → index 11 here, stime index 12.
            if fields.count > 12, let u = Double(fields[11]), let st = Double(fields[12]) {
                cpu = (u + st) / Double(sysconf(Int32(_SC_CLK_TCK)))
            }
        }
        return ProcessStats(rssBytes: rss, openFDs: fds, cpuSeconds: cpu)
    }
}
