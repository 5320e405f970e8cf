import Foundation
import Glibc
import Protocol
import Testing

/// /metrics, request IDs and HTTP hardening against the real binary.
@Suite(.serialized) struct ObservabilityTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    func run(_ arguments: [String], input: String? = nil) throws -> (Int32, String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = arguments
        let out = Pipe()
        p.standardOutput = out
        p.standardError = out
        let inPipe = Pipe()
        p.standardInput = inPipe
        try p.run()
        ignoreSIGPIPE
        // A child that exits without reading all of stdin fails its own check; the write must not trap.
        if let input { try? inPipe.fileHandleForWriting.write(contentsOf: Data(input.utf8)) }
        try inPipe.fileHandleForWriting.close()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    @Test func startupLogPrintsTheURLsItListensOn() throws {
        let gw = try GatewayProcess(["--echo-path", "/echo"], threads: 1)
        // /health can answer before the startup lines are written (they follow the last loop's start).
        let deadline = Date().addingTimeInterval(TestTiming.seconds(5))
        while !gw.log().contains("\"msg\":\"listening\"") && Date() < deadline { usleep(20_000) }
        let log = gw.log()
        #expect(log.contains("\"ws\":\"ws://127.0.0.1:\(gw.port)/ws\""), "\(log.prefix(2000))")
        #expect(log.contains("\"echo\":\"ws://127.0.0.1:\(gw.port)/echo\""))
        #expect(log.contains("\"admin\":\"http://127.0.0.1:\(gw.adminPort)/\""))
    }

    @Test func metricsMoveAsTrafficImpliesAndParseWithPrometheusClient() throws {
        let gw = try GatewayProcess(threads: 2)
        let n = 5
        let m = 7
        let clients = try (0..<n).map { _ in try WSClient(port: gw.port) }
        for c in clients { _ = try c.join("metrics-room") }
        for i in 0..<m { try clients[0].sendOp("{\"op\":\"publish\",\"room\":\"metrics-room\",\"data\":\(i)}") }
        for c in clients { #expect(try c.drainJSON(quiet: 0.4).filter { $0.op == "message" }.count == m) }
        #expect(try gw.metric("switchboard_connections_open") == Double(n))
        #expect(try gw.metric("switchboard_handshakes_completed_total") == Double(n))
        #expect(try gw.metric("switchboard_room_joins_total") == Double(n))
        #expect(try gw.metric("switchboard_publishes_total{source=\"client\"}") == Double(m))
        #expect(try gw.metric("switchboard_messages_in_total") == Double(n + m))
        // Out: n hello + n joined + m x n messages.
        #expect(try gw.metric("switchboard_messages_out_total") == Double(2 * n + m * n))
        #expect(try gw.metric("switchboard_rooms") == 1)
        #expect(try gw.metric("switchboard_bus_publish_latency_seconds_count") == Double(m))
        // m one-digit messages in "metrics-room": data + room name + 128 B each; n upgraded sockets.
        #expect(try gw.metric("switchboard_memory_bytes{area=\"history\"}") == Double(m * (1 + 12 + 128)))
        #expect(try gw.metric("switchboard_memory_bytes{area=\"connections\"}") == Double(n * 1024))
        #expect(try gw.metric("switchboard_memory_bytes{area=\"analytics\"}") == 0)
        #expect(try gw.metric("switchboard_memory_bytes{area=\"outbound_queues\"}") != nil)
        #expect(try gw.metric("switchboard_history_evictions_total") == 0)
        let (_, exposition) = try httpGet(port: gw.adminPort, path: "/metrics")
        // Debian's python3-prometheus-client (scripts/deps.sh test) parses the exposition.
        let parser = """
            import sys
            from prometheus_client.parser import text_string_to_metric_families
            fams = list(text_string_to_metric_families(sys.stdin.read()))
            assert all(f.name.startswith("switchboard_") for f in fams), [f.name for f in fams]
            print(len(fams), "families")
            """
        let (status, out) = try run(["/usr/bin/python3", "-c", parser], input: exposition)
        #expect(status == 0, "\(out)")
        for c in clients { try c.send(.close, FrameEncoder.closePayload(code: .normalClosure)) }
        for c in clients { _ = try? c.expectClose() }
        usleep(300_000)
        #expect(try gw.metric("switchboard_connections_open") == 0)
        #expect(try gw.metric("switchboard_connections_closed_total{code=\"1000\"}") == Double(n))
    }

    @Test func dashboardAndAlertsQueryOnlyExportedMetrics() throws {
        // With Redis, so the bus families (exported only by a node on the Redis bus) are there too.
        let redis = try RedisServer()
        let gw = try GatewayProcess(["--redis-url", redis.url], threads: 1)
        defer { withExtendedLifetime(redis) {} }
        let (status, out) = try run([
            "python3", Self.root.appendingPathComponent("scripts/check-dashboard.py").path,
            "http://127.0.0.1:\(gw.adminPort)/metrics",
            Self.root.appendingPathComponent("deploy/grafana/switchboard-dashboard.json").path,
            Self.root.appendingPathComponent("deploy/prometheus/switchboard-alerts.yml").path
        ])
        #expect(status == 0, "\(out)")
        #expect(out.contains("0 failed"), "\(out)")
    }

    @Test func requestIDIsGeneratedOrTakenFromATrustedProxyOnly() throws {
        let untrusted = try GatewayProcess(threads: 1)
        let a = try WSClient(port: untrusted.port, headers: [HTTPHeader("X-Request-ID", "from-client-1")])
        let generated = a.upgradeHeaders?["X-Request-ID"] ?? ""
        #expect(generated.count == 16 && generated != "from-client-1")
        #expect(untrusted.log().contains("\"request_id\":\"\(generated)\""))
        let trusted = try GatewayProcess(["--trusted-proxies", "127.0.0.0/8"], threads: 1)
        let b = try WSClient(port: trusted.port, headers: [HTTPHeader("X-Request-ID", "from-proxy-42")])
        #expect(b.upgradeHeaders?["X-Request-ID"] == "from-proxy-42")
        usleep(100_000)
        #expect(trusted.log().contains("\"request_id\":\"from-proxy-42\""))
    }

    @Test func adminPortRefusesAmbiguousBodyFraming() throws {
        let gw = try GatewayProcess(["--api-key", "k"], threads: 1)
        let body = #"{"room":"r","data":1}"#
        let head = "POST /api/publish HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer k\r\n"
        func status(_ headers: String) throws -> String {
            let raw = try RawSocket(port: gw.adminPort)
            try raw.send(Array((head + headers + "\r\n" + body).utf8))
            return String(decoding: try raw.readToEOF(timeout: 3), as: UTF8.self).split(separator: "\r\n").first.map(String.init) ?? ""
        }
        #expect(try status("Content-Length: \(body.utf8.count)\r\n").hasPrefix("HTTP/1.1 202"), "the well-formed request is accepted")
        for bad in [
            "Content-Length: \(body.utf8.count)\r\nTransfer-Encoding: chunked\r\n",
            "Content-Length: \(body.utf8.count)\r\nContent-Length: 3\r\n",
            "Content-Length: +\(body.utf8.count)\r\n",
            "Content-Length: \(body.utf8.count), \(body.utf8.count)\r\n"
        ] {
            #expect(try status(bad).hasPrefix("HTTP/1.1 400"), "\(bad)")
        }
    }

    @Test func hstsIsSentOnlyWhenConfigured() throws {
        let gw = try GatewayProcess(["--hsts-max-age", "1h"], threads: 1)
        let raw = try RawSocket(port: gw.adminPort)
        try raw.send(Array("GET /health HTTP/1.1\r\nHost: a\r\n\r\n".utf8))
        #expect(String(decoding: try raw.readToEOF(timeout: 3), as: UTF8.self).contains("Strict-Transport-Security: max-age=3600"))
        let plain = try GatewayProcess(threads: 1)
        let raw2 = try RawSocket(port: plain.adminPort)
        try raw2.send(Array("GET /health HTTP/1.1\r\nHost: a\r\n\r\n".utf8))
        #expect(!String(decoding: try raw2.readToEOF(timeout: 3), as: UTF8.self).contains("Strict-Transport-Security"))
    }
}
