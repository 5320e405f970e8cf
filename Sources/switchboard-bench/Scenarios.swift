import Foundation
import Glibc
import Protocol
import Runtime
import SwitchboardClient
import TLS

struct BenchError: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}

/// What every scenario needs: the parsed flags with their defaults applied, and the bench loop.
struct Context {
    let scenario: String
    let options: Options
    let host: String
    let port: Int
    let path: String
    let expectHello: Bool
    /// `--protocol`: how members join and read messages and how the publisher publishes.
    let wire: WireProtocol
    let gatewayPid: Int32?
    let perProcess: Int
    let connectConcurrency: Int
    let connectTimeoutMs: Int
    let openTimeoutMs: Int
    let jsonOnly: Bool
    /// `--tls`: every connection speaks TLS (full handshake each, no certificate check), else plain TCP.
    let tls: TLSClientContext?
    /// `--tls-server-name`: SNI sent by every connection ("" = none, as for clients connecting to an IP).
    let tlsServerName: String
    /// The client transports' counters (a transport holds them unowned: they live as long as the bench).
    let tlsMetrics = TLSMetrics()

    init(scenario: String, options: Options) throws {
        self.scenario = scenario
        self.options = options
        host = options.string("host", "127.0.0.1")
        guard host == "localhost" || host.hasPrefix("127.") else {
            throw BenchError("--host must be a loopback address (127.x.x.x): the bench only loads local gateways")
        }
        port = try options.int("port", 8080, 1...65535)
        path = options.string("path", "/ws")
        switch options.values["expect-hello"] {
        case nil: expectHello = path == "/ws"
        case "yes": expectHello = true
        case "no": expectHello = false
        case let v?: throw BenchError("--expect-hello: expected yes or no, got '\(v)'")
        }
        guard let wire = WireProtocol(rawValue: options.string("protocol", "switchboard")) else {
            throw BenchError("--protocol: expected switchboard or nchan, got '\(options.string("protocol", ""))'")
        }
        self.wire = wire
        gatewayPid = try options.optionalInt("gateway-pid", 1...Int(Int32.max)).map { Int32($0) }
        perProcess = try options.int("per-process", 19_000, 1...1_000_000)
        connectConcurrency = try options.int("connect-concurrency", 256, 1...100_000)
        connectTimeoutMs = try options.duration("connect-timeout", 5000)
        openTimeoutMs = try options.duration("open-timeout", 60_000)
        jsonOnly = options.has("json")
        tlsServerName = options.string("tls-server-name", "")
        if options.has("tls") {
            do { tls = try TLSClientContext(caFile: nil, verifyPeer: false, alpn: ["http/1.1"]) } catch { throw BenchError("--tls: \(error)") }
        } else {
            tls = nil
        }
    }

    /// The gateway at `port` (default `--port`), over TLS with `--tls`.
    func endpoint(port: Int? = nil, sourceHost: String? = nil) throws -> Endpoint {
        var e = try Endpoint(host: host, port: port ?? self.port, path: path, sourceHost: sourceHost)
        if let tls {
            let (name, metrics) = (tlsServerName, tlsMetrics)
            e.transportFactory = { tls.makeTransport(serverName: name, verifyName: false, metrics: metrics) }
        }
        return e
    }

    /// The member connections of this scenario: idle connections (no room) or room members. `count` and
    /// `sourceHost` differ per child process.
    func memberConfig(count: Int, sourceHost: String?) throws -> GroupConfig {
        let memberPort = scenario == "crossnode" ? try options.int("member-port", port, 1...65535) : port
        return GroupConfig(
            endpoint: try endpoint(port: memberPort, sourceHost: sourceHost),
            count: count,
            room: scenario == "idle" ? nil : options.string("room", "bench"),
            expectHello: expectHello,
            wire: wire,
            connectConcurrency: connectConcurrency,
            connectTimeoutMs: connectTimeoutMs)
    }

    func memberCount() throws -> Int {
        switch scenario {
        case "idle": try options.int("connections", 10_000, 1...10_000_000)
        case "crossnode": try options.int("members", 10, 1...10_000_000)
        default: try options.int("members", 1000, 1...10_000_000)
        }
    }

    func shards(bench: ClientLoop) throws -> [MemberShard] {
        // Only the in-process case calls the closure; children build their own config (see main.swift).
        try makeShards(bench: bench, total: memberCount(), perProcess: perProcess, scenario: scenario, options: options) { n, src in
            try memberConfig(count: n, sourceHost: src)
        }
    }

    /// gateway CPU, bench CPU (this process and its children), started now.
    func meters(shards: [MemberShard]) -> CPUMeters {
        CPUMeters(gatewayPid: gatewayPid, benchPids: [getpid()] + shards.compactMap { $0.pid })
    }

    func addCommon(to r: inout Report) {
        r.add("host", host)
        r.add("path", path)
        r.add("tls", tls != nil)
        if let gatewayPid { r.add("gateway_pid", Int(gatewayPid)) }
    }
}

func openShards(_ shards: [MemberShard], timeoutMs: Int) -> GroupReady {
    var ready = GroupReady()
    for s in shards { ready.merge(s.waitReady(timeoutMs: timeoutMs)) }
    return ready
}

func addReady(_ ready: GroupReady, seconds: Double, to r: inout Report) {
    r.add("opened", ready.ready)
    r.add("open_failed", ready.failed)
    for (k, v) in ready.failures.sorted(by: { $0.key < $1.key }) { r.add("open_failure_\(k)", v) }
    r.add("open_seconds", seconds, unit: "s", decimals: 2)
    r.add("opens_per_second", Double(ready.ready) / max(seconds, 1e-9), unit: "/s", decimals: 0)
}

// MARK: - idle

func runIdle(_ ctx: Context, _ bench: ClientLoop) throws -> Report {
    let n = try ctx.memberCount()
    let holdMs = try ctx.options.duration("hold", 10_000)
    var r = Report(scenario: "idle")
    ctx.addCommon(to: &r)
    r.add("connections", n)
    let rssBefore = ctx.gatewayPid.flatMap { ProcStats.rssKiB(pid: $0) }
    if ctx.gatewayPid == nil { r.note("no --gateway-pid: RSS and CPU of the gateway not measured") }
    Progress.say("opening \(n) connections to \(ctx.host):\(ctx.port)\(ctx.path)")
    let t0 = monotonicNanoseconds()
    let shards = try ctx.shards(bench: bench)
    let ready = openShards(shards, timeoutMs: ctx.openTimeoutMs)
    let openSeconds = Double(monotonicNanoseconds() - t0) / 1e9
    let rssAfter = ctx.gatewayPid.flatMap { ProcStats.rssKiB(pid: $0) }
    addReady(ready, seconds: openSeconds, to: &r)
    r.add("bench_processes", shards.count)
    if let rssBefore, let rssAfter {
        r.add("gateway_rss_before_kib", rssBefore, unit: "KiB")
        r.add("gateway_rss_after_kib", rssAfter, unit: "KiB")
        r.add("rss_per_connection_kib", Double(rssAfter - rssBefore) / Double(max(ready.ready, 1)), unit: "KiB", decimals: 2)
    }
    Progress.say("\(ready.ready) open (\(ready.failed) failed) in \(String(format: "%.2f", openSeconds)) s; holding \(holdMs) ms")
    for s in shards { s.beginStep(base: 0) }
    let meters = ctx.meters(shards: shards)
    sleepMilliseconds(holdMs)
    let cpu = meters.read()
    var held = GroupResult()
    for s in shards { s.requestFinish(published: 0, drainMs: 0) }
    for s in shards { held.merge(s.collectFinish()) }
    let rssHeld = ctx.gatewayPid.flatMap { ProcStats.rssKiB(pid: $0) }
    r.add("hold_seconds", Double(holdMs) / 1000, unit: "s", decimals: 1)
    cpu.add(to: &r, suffix: "_hold")
    if let rssHeld { r.add("gateway_rss_end_of_hold_kib", rssHeld, unit: "KiB") }
    r.add("closed_during_hold", held.closedMembers)
    for (k, v) in held.closeCauses.sorted(by: { $0.key < $1.key }) { r.add("closed_during_hold_\(k)", v) }
    r.add("pings_answered", held.pingsAnswered)
    for s in shards { s.close() }
    return r
}

// MARK: - handshakes

func runHandshakes(_ ctx: Context, _ bench: ClientLoop) throws -> Report {
    let concurrency = try ctx.options.int("concurrency", 256, 1...ctx.perProcess)
    let durationMs = try ctx.options.duration("duration", 5000)
    let endpoint = try ctx.endpoint()
    let limit = try ctx.options.optionalInt("count", 1...100_000_000)
    let completion: HandshakeDriver.Completion
    switch ctx.options.string("until", "upgrade") {
    case "upgrade": completion = .upgrade
    case "hello": completion = .firstText
    case "joined": completion = .join(room: ctx.options.string("room", "bench"))
    case let v: throw BenchError("--until: expected upgrade, hello or joined, got '\(v)'")
    }
    var r = Report(scenario: "handshakes")
    ctx.addCommon(to: &r)
    r.add("concurrency", concurrency)
    r.add("duration_seconds", Double(durationMs) / 1000, unit: "s", decimals: 1)
    Progress.say("handshakes against \(ctx.host):\(ctx.port)\(ctx.path), \(concurrency) in flight, \(durationMs) ms")
    let driver = bench.sync {
        HandshakeDriver(
            bench: bench, endpoint: endpoint, concurrency: concurrency, timeoutMs: ctx.connectTimeoutMs,
            completion: completion, limit: limit, joinText: ctx.options.values["join-frame"])
    }
    let meters = ctx.meters(shards: [])
    bench.sync { driver.start(durationMs: durationMs) }
    if limit != nil {
        // --count: done when every started handshake finished (or at the deadline).
        _ = waitUntil(timeoutMs: durationMs) { bench.sync { driver.finished } }
    } else {
        sleepMilliseconds(durationMs)
    }
    let cpu = meters.read()
    _ = waitUntil(timeoutMs: ctx.connectTimeoutMs + 1000) { bench.sync { driver.finished } }
    bench.sync { driver.stopAll() }
    struct Figures: Sendable {
        var inWindow = 0, total = 0, failed = 0
        var failures: [String: Int] = [:]
        var latency = Histogram()
        var seconds = 0.0
    }
    let f = bench.sync {
        Figures(
            inWindow: driver.completedInWindow, total: driver.completed, failed: driver.failed, failures: driver.failures,
            latency: driver.latency,
            seconds: Double((limit != nil ? min(driver.lastDoneNs, driver.deadlineNs) : driver.deadlineNs) - driver.startNs) / 1e9)
    }
    r.add("handshakes_per_second", Double(f.inWindow) / f.seconds, unit: "/s", decimals: 0)
    r.add("completed", f.total)
    r.add("failures", f.failed)
    for (k, v) in f.failures.sorted(by: { $0.key < $1.key }) { r.add("failure_\(k)", v) }
    f.latency.addLatencies(to: &r, name: "handshake_latency")
    cpu.add(to: &r)
    if let g = cpu.gateway, f.inWindow > 0 {
        // CPU cost per handshake: robust against a machine shared with other load, unlike the rate.
        r.add("gateway_cpu_us_per_handshake", g / 100 * f.seconds / Double(f.inWindow) * 1e6, unit: "µs", decimals: 2)
    }
    if let b = cpu.bench, f.inWindow > 0 {
        r.add("bench_cpu_us_per_handshake", b / 100 * f.seconds / Double(f.inWindow) * 1e6, unit: "µs", decimals: 2)
    }
    return r
}

// MARK: - fanout and crossnode

/// One measured publishing step: what the publisher did and what the members saw.
struct StepOutcome {
    var mode: PublishMode
    var durationMs: Int
    var publish: PublishStats
    var group: GroupResult
    var cpu: CPUSample
    var drained: Bool
    var publisherClosed: ConnectionEnd?

    var published: Int { publish.acked }
    var expected: Int { published * group.members }
    var publishSeconds: Double { Double(durationMs) / 1000 }
    /// From the first publish to the last delivery.
    var deliverySeconds: Double {
        guard group.lastDeliveryNs > publish.firstSendNs else { return 0 }
        return Double(group.lastDeliveryNs - publish.firstSendNs) / 1e9
    }
    var deliveredPerSecond: Double { deliverySeconds > 0 ? Double(group.delivered) / deliverySeconds : 0 }
    var publishesPerSecond: Double { Double(publish.sent) / max(publishSeconds, 1e-9) }
    var clean: Bool {
        group.lost == 0 && group.duplicates == 0 && group.outOfOrder == 0 && group.closedMembers == 0 && publish.errors == 0
    }

    func add(to r: inout Report) {
        r.add("mode", mode.description)
        if case .rate(let rate) = mode { r.add("target_rate", rate, unit: "publishes/s", decimals: 0) }
        r.add("publish_seconds", publishSeconds, unit: "s", decimals: 1)
        r.add("members", group.members)
        r.add("published", published)
        r.add("publish_errors", publish.errors)
        for (k, v) in publish.errorCodes.sorted(by: { $0.key < $1.key }) { r.add("publish_error_\(k)", v) }
        if publish.heldBack > 0 { r.add("publishes_held_back", publish.heldBack) }
        r.add("publishes_per_second", publishesPerSecond, unit: "/s", decimals: 0)
        r.add("expected", expected)
        r.add("delivered", group.delivered)
        r.add("lost", group.lost)
        r.add("duplicates", group.duplicates)
        r.add("out_of_order", group.outOfOrder)
        r.add("members_closed", group.closedMembers)
        for (k, v) in group.closeCauses.sorted(by: { $0.key < $1.key }) { r.add("members_closed_\(k)", v) }
        if group.stale > 0 { r.add("stale", group.stale) }
        if group.otherFrames > 0 { r.add("other_frames", group.otherFrames) }
        r.add("drained", drained)
        if let publisherClosed { r.add("publisher_closed", publisherClosed.tallyKey) }
        r.add("delivered_per_second", deliveredPerSecond, unit: "msg/s", decimals: 0)
        group.latency.addLatencies(to: &r, name: "latency")
        publish.ackLatency.addLatencies(to: &r, name: "ack_latency")
        cpu.add(to: &r)
        if let g = cpu.gateway, group.delivered > 0 {
            // Gateway CPU per delivered message over the publishing phase (the backlog may drain later).
            let inWindow = min(Double(group.delivered), deliveredPerSecond * publishSeconds)
            r.add("gateway_cpu_ns_per_delivery", g / 100 * publishSeconds / max(inWindow, 1) * 1e9, unit: "ns", decimals: 0)
        }
    }
}

func runStep(
    _ ctx: Context, _ bench: ClientLoop, shards: [MemberShard], publisher: Publisher,
    mode: PublishMode, durationMs: Int, drainMs: Int
) -> StepOutcome {
    let base = bench.sync { publisher.seq }
    for s in shards { s.beginStep(base: base) }
    let meters = ctx.meters(shards: shards)
    bench.sync { publisher.start(mode) }
    sleepMilliseconds(durationMs)
    bench.sync { publisher.stop() }
    let cpu = meters.read()
    _ = waitUntil(timeoutMs: drainMs) { bench.sync { publisher.stats.inflight == 0 || publisher.closedCause != nil } }
    let (stats, publisherClosed) = bench.sync { (publisher.stats, publisher.closedCause) }
    let t0 = monotonicMilliseconds()
    for s in shards { s.requestFinish(published: stats.acked, drainMs: drainMs) }
    var group = GroupResult()
    for s in shards { group.merge(s.collectFinish()) }
    let drained = group.lost == 0 || monotonicMilliseconds() - t0 < UInt64(drainMs)
    return StepOutcome(
        mode: mode, durationMs: durationMs, publish: stats, group: group,
        cpu: cpu, drained: drained, publisherClosed: publisherClosed)
}

func runFanout(_ ctx: Context, _ bench: ClientLoop) throws -> Report {
    let cross = ctx.scenario == "crossnode"
    let members = try ctx.memberCount()
    let room = ctx.options.string("room", "bench")
    guard Envelope.isValidRoomName(room) else { throw BenchError("--room: not a valid room name") }
    let size = try ctx.options.size("size", 64)
    let durationMs = try ctx.options.duration("duration", 10_000)
    let drainMs = try ctx.options.duration("drain-timeout", 5000)
    let window = try ctx.options.int("window", 32, 1...1_000_000)
    let maxInflight = try ctx.options.int("max-inflight", 100_000, 1...10_000_000)
    let publishPort = cross ? try ctx.options.int("publish-port", ctx.port, 1...65535) : ctx.port
    let memberPort = cross ? try ctx.options.int("member-port", ctx.port, 1...65535) : ctx.port
    let rateText = ctx.options.values["rate"] ?? (cross ? "1000" : nil)
    var rate: Double?
    let search = rateText == "max"
    if let rateText, !search {
        guard let v = Double(rateText), v > 0 else { throw BenchError("--rate: expected publishes per second or 'max', got '\(rateText)'") }
        rate = v
    }

    var r = Report(scenario: ctx.scenario)
    ctx.addCommon(to: &r)
    r.add("publish_port", publishPort)
    r.add("member_port", memberPort)
    r.add("room", room)
    r.add("size_bytes", size)
    r.add("protocol", ctx.wire.rawValue)
    Progress.say("opening \(members) members on port \(memberPort), joining '\(room)'")
    let t0 = monotonicNanoseconds()
    let shards = try ctx.shards(bench: bench)
    let publishEndpoint = try ctx.endpoint(port: publishPort)
    let httpPath = ctx.wire == .nchan ? ctx.options.string("publish-path", "/pub/\(room)") : nil
    if httpPath != nil && ctx.tls != nil { throw BenchError("--protocol nchan: the HTTP publisher speaks no TLS") }
    if let httpPath {
        r.add("publish_path", httpPath)
        // nchan names the channel in both URLs; a mismatch would publish where no member listens.
        if !ctx.path.hasSuffix("/\(room)") || !httpPath.hasSuffix("/\(room)") {
            r.note("--protocol nchan: --path \(ctx.path) and the publish path \(httpPath) should both end in /\(room)")
        }
    }
    let publisher = bench.sync {
        Publisher(
            bench: bench, endpoint: publishEndpoint,
            room: room, size: size, maxInflight: maxInflight, expectHello: ctx.expectHello, httpPath: httpPath)
    }
    bench.sync { publisher.connect() }
    let ready = openShards(shards, timeoutMs: ctx.openTimeoutMs)
    addReady(ready, seconds: Double(monotonicNanoseconds() - t0) / 1e9, to: &r)
    r.add("bench_processes", shards.count)
    guard waitUntil(timeoutMs: ctx.connectTimeoutMs, { bench.sync { publisher.ready } }) else {
        let cause = bench.sync { publisher.closedCause }
        for s in shards { s.close() }
        throw BenchError("the publisher could not connect: \(cause.map { "\($0)" } ?? "timeout")")
    }
    guard ready.ready > 0 else {
        for s in shards { s.close() }
        throw BenchError("no member could join: \(ready.failures)")
    }
    Progress.say("\(ready.ready) members joined (\(ready.failed) failed)")
    defer {
        bench.sync { publisher.close() }
        for s in shards { s.close() }
    }

    if !search {
        let mode = rate.map { PublishMode.rate($0) } ?? .window(window)
        Progress.say("publishing for \(durationMs) ms, \(mode)")
        let outcome = runStep(ctx, bench, shards: shards, publisher: publisher, mode: mode, durationMs: durationMs, drainMs: drainMs)
        outcome.add(to: &r)
        return r
    }

    // --rate max: double until a step loses, errs or cannot keep the rate, then bisect (bounded steps).
    let stepMs = try ctx.options.duration("step-duration", 3000)
    let maxP99 = Double(try ctx.options.duration("max-p99", 50))
    r.add("max_p99_ms", maxP99, unit: "ms", decimals: 0)
    var current = 1000.0
    var best: StepOutcome?
    var bestRate = 0.0
    var firstBad: Double?
    for step in 1...14 {
        if step > 1 {
            sleepMilliseconds(500)
            let again = shards.reduce(into: GroupReady()) { $0.merge($1.reopen(timeoutMs: ctx.openTimeoutMs)) }
            if let cause = bench.sync({ publisher.closedCause }) {
                r.note("step \(step): the publisher's connection had closed (\(cause)); reconnecting")
                bench.sync { publisher.connect() }
                guard waitUntil(timeoutMs: ctx.connectTimeoutMs, { bench.sync { publisher.ready } }) else {
                    r.note("search stopped: the publisher could not reconnect")
                    break
                }
            }
            if again.ready < ready.ready { r.note("step \(step): only \(again.ready) of \(ready.ready) members back") }
        }
        Progress.say("step \(step): \(Int(current)) publishes/s for \(stepMs) ms")
        let o = runStep(ctx, bench, shards: shards, publisher: publisher, mode: .rate(current), durationMs: stepMs, drainMs: drainMs)
        let kept = o.publishesPerSecond >= 0.95 * current && o.publish.heldBack == 0
        let p99 = Double(o.group.latency.percentile(99)) / 1e6
        let ok = o.clean && kept && o.drained && p99 <= maxP99
        r.note(
            String(
                format: "step %d: rate %.0f/s sent %.0f/s delivered %.0f msg/s lost %d dup %d closed %d p99 %.2f ms -> %@",
                step, current, o.publishesPerSecond, o.deliveredPerSecond, o.group.lost, o.group.duplicates,
                o.group.closedMembers, Double(o.group.latency.percentile(99)) / 1e6, ok ? "ok" : "fail"))
        if ok {
            best = o
            bestRate = current
            current = firstBad.map { (current + $0) / 2 } ?? current * 2
        } else {
            firstBad = current
            current = best == nil ? current / 2 : (bestRate + current) / 2
        }
        if let bad = firstBad, best != nil, (bad - bestRate) / bestRate < 0.05 { break }
        if current < 10 { break }
    }
    r.add("max_clean_rate", bestRate, unit: "publishes/s", decimals: 0)
    if let best {
        best.add(to: &r)
    } else {
        r.note("no rate down to 10/s ran without loss")
    }
    return r
}
