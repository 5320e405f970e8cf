import Foundation
import Glibc
import Protocol
import Testing

/// The deployment files: `scripts/validate-deploy.sh` (compose, Kubernetes, HAProxy, nginx, systemd,
/// consistency, Dockerfile/README drift), the image's HEALTHCHECK command against the real binary, and
/// the local cluster (`scripts/cluster`): Redis, three nodes and HAProxy on loopback, a message crossing
/// nodes through HAProxy, and `down` leaving no process behind.
@Suite(.serialized) struct DeployTests {
    /// The package root (this file is Tests/GatewayTests/DeployTests.swift).
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    // MARK: - Static validation

    @Test func validateDeployPasses() throws {
        let r = try Self.run(["bash", "scripts/validate-deploy.sh"], timeout: 600)
        #expect(r.status == 0, "validate-deploy.sh exited \(r.status):\n\(r.output)")
        #expect(r.output.contains("validate-deploy: all checks passed"))
    }

    /// The drift check bites: a Dockerfile whose build command differs from the README's fails validation.
    @Test func dockerfileReadmeDriftIsCaught() throws {
        let tmp = try Self.tempDir("sb-drift")
        defer { try? FileManager.default.removeItem(at: tmp) }
        for path in ["Dockerfile", "README.md", "docker-compose.yml", "scripts/validate-deploy.sh", "deploy"] {
            let dst = tmp.appendingPathComponent(path)
            try FileManager.default.createDirectory(at: dst.deletingLastPathComponent(), withIntermediateDirectories: true)
            try FileManager.default.copyItem(at: Self.root.appendingPathComponent(path), to: dst)
        }
        let dockerfile = tmp.appendingPathComponent("Dockerfile")
        let text = try String(contentsOf: dockerfile, encoding: .utf8)
        #expect(text.contains("--static-swift-stdlib\n"))
        try text.replacingOccurrences(of: "--static-swift-stdlib\n", with: "--static-swift-stdlib -Xswiftc -Ounchecked\n")
            .write(to: dockerfile, atomically: true, encoding: .utf8)
        let r = try Self.run(["bash", "scripts/validate-deploy.sh"], cwd: tmp, timeout: 600)
        #expect(r.status != 0)
        #expect(
            r.output.contains("WRONG README has the Dockerfile's `swift build -c release --product switchboard --static-swift-stdlib -Xswiftc -Ounchecked`"),
            "\(r.output)")
    }

    /// The Dockerfile's HEALTHCHECK (`switchboard --health-check`: no shell or curl in the image) passes against
    /// a live node's /health and fails when nothing answers. The image's binary path is mapped to the built one.
    @Test func dockerHealthcheckReadsHealth() throws {
        let dockerfile = try String(contentsOf: Self.root.appendingPathComponent("Dockerfile"), encoding: .utf8)
            .replacingOccurrences(of: "\\\n", with: " ")
        guard let line = dockerfile.split(separator: "\n").first(where: { $0.hasPrefix("HEALTHCHECK ") }),
            let cmdRange = line.range(of: "CMD "),
            var argv = try JSONSerialization.jsonObject(with: Data(line[cmdRange.upperBound...].utf8)) as? [String]
        else {
            Issue.record("no exec-form HEALTHCHECK in the Dockerfile")
            return
        }
        if argv.first == "/usr/local/bin/switchboard" { argv[0] = GatewayProcess.binary.path }
        let gw = try GatewayProcess(threads: 1)
        let healthy = try Self.run(argv, environment: ["SWITCHBOARD_ADMIN_PORT": "\(gw.adminPort)"], timeout: 10)
        #expect(healthy.status == 0, "\(healthy.output)")
        gw.stop(signal: SIGKILL)  // only the closed port matters here (SIGTERM would drain for seconds)
        let down = try Self.run(argv, environment: ["SWITCHBOARD_ADMIN_PORT": "\(gw.adminPort)"], timeout: 10)
        #expect(down.status != 0)
    }

    // MARK: - The local cluster

    @Test func localClusterCarriesAMessageAcrossNodesAndLeavesNothingBehind() throws {
        let tmp = try Self.tempDir("sb-cluster")
        defer { try? FileManager.default.removeItem(at: tmp) }
        let runDir = tmp.appendingPathComponent("run")
        let base = try Self.freePortBlock()
        let lbPort = base
        let adminBase = base + 10
        let statsPort = base + 20
        let redisPort = base + 30
        let env = [
            "SB_CLUSTER_DIR": runDir.path, "SWITCHBOARD_BIN": GatewayProcess.binary.path,
            "SB_LB_PORT": "\(lbPort)", "SB_NODE_PORT_BASE": "\(base)", "SB_ADMIN_PORT_BASE": "\(adminBase)",
            "SB_STATS_PORT": "\(statsPort)", "SB_REDIS_PORT": "\(redisPort)", "SB_STOP_TIMEOUT": "20"
        ]
        let clusterPorts = [lbPort, statsPort, redisPort] + (1...3).flatMap { [base + $0, adminBase + $0] }

        let up = try Self.run(["scripts/cluster", "up", "3"], environment: env, timeout: 120)
        var downDone = false
        defer { if !downDone { _ = try? Self.run(["scripts/cluster", "down"], environment: env, timeout: 60) } }
        try #require(up.status == 0, "cluster up exited \(up.status):\n\(up.output)\n\(Self.logs(runDir))")
        #expect(up.output.contains("ws://127.0.0.1:\(lbPort)/ws"), "\(up.output)")
        let status = try Self.run(["scripts/cluster", "status"], environment: env, timeout: 30)
        #expect(status.status == 0, "\(status.output)")
        print("cluster up:\n\(up.output)status:\n\(status.output)")

        // Clients through HAProxy (leastconn): keep connecting until two different nodes serve them.
        var clients: [WSClient] = []
        var byNode: [String: WSClient] = [:]
        for _ in 0..<12 where byNode.count < 3 {
            let c = try WSClient(port: lbPort)
            clients.append(c)
            if let node = c.hello?.node, byNode[node] == nil { byNode[node] = c }
        }
        let nodes = byNode.keys.sorted()
        try #require(nodes.count >= 2, "HAProxy sent every client to the same node: \(nodes)")
        let a = byNode[nodes[0]]!
        let b = byNode[nodes[1]]!
        print("clients through HAProxy landed on \(nodes)")
        for c in [a, b] {
            let joined = try c.join("deploy-e2e")
            #expect(joined.op == "joined")
        }
        usleep(200_000)  // both nodes' room subscriptions reach Redis

        // A client on one node publishes; a client on another node receives it.
        try a.sendOp("{\"op\":\"publish\",\"room\":\"deploy-e2e\",\"data\":{\"text\":\"across\"},\"id\":1}")
        let gotB = try Self.nextMessage(b, timeout: 5)
        #expect(gotB?.data?.description == "{\"text\":\"across\"}", "\(nodes[1]) did not get \(nodes[0])'s message")
        let seenA = try a.drainJSON(quiet: 0.5)
        #expect(seenA.contains { $0.op == "ack" } && seenA.contains { $0.op == "message" && $0.offset == gotB?.offset })
        print("message from \(nodes[0]) reached \(nodes[1]) at offset \(gotB?.offset ?? "-")")

        // A backend publishes on a third node's admin API; both clients get it.
        let key = try String(contentsOf: runDir.appendingPathComponent("api-key"), encoding: .utf8)
            .trimmingCharacters(in: .whitespacesAndNewlines)
        let third = (1...3).first { !nodes.prefix(2).contains("node\($0)") } ?? 3
        let (code, answer) = try httpRequest(
            port: adminBase + third, method: "POST", path: "/api/publish",
            headers: ["Authorization": "Bearer \(key)"],
            body: Array("{\"room\":\"deploy-e2e\",\"data\":\"from node\(third)\"}".utf8))
        #expect(code == 202, "\(answer)")
        for c in [a, b] {
            let m = try Self.nextMessage(c, timeout: 5)
            #expect(m?.data?.description == "\"from node\(third)\"")
        }

        // restart (one step of `roll`): a's node drains (its client is told to reconnect, then 1012),
        // comes back, and HAProxy routes to it again.
        let victim = Int(nodes[0].dropFirst("node".count)) ?? 1
        let restart = try Self.run(["scripts/cluster", "restart", "\(victim)"], environment: env, timeout: 90)
        #expect(restart.status == 0 && restart.output.contains("back in rotation"), "\(restart.output)")
        var sawReconnect = false
        var closeCode: UInt16?
        events: while let e = try? a.next(timeout: 2) {
            switch e {
            case .text(let t): sawReconnect = sawReconnect || t.contains("\"op\":\"reconnect\"")
            case .close(let code, _): closeCode = code; break events
            default: continue
            }
        }
        #expect(sawReconnect && closeCode == 1012, "drained client: reconnect \(sawReconnect), close \(closeCode.map(String.init) ?? "none")")
        let after = try Self.run(["scripts/cluster", "status"], environment: env, timeout: 30)
        #expect(after.status == 0, "\(after.output)")
        print("restart node\(victim):\n\(restart.output)")

        // down: every recorded process gone, nothing listening, no process mentions the run dir or a node port.
        let pids = Self.recordedPids(runDir)
        #expect(pids.count == 5, "pid files: \(pids)")
        clients.removeAll()
        let down = try Self.run(["scripts/cluster", "down"], environment: env, timeout: 60)
        downDone = true
        #expect(down.status == 0, "\(down.output)")
        #expect(down.output.contains("nothing left running"), "\(down.output)")
        for (name, pid) in pids {
            #expect(!Self.alive(pid), "\(name) (pid \(pid)) still running after down")
        }
        for p in clusterPorts {
            #expect((try? RawSocket(port: p)) == nil, "127.0.0.1:\(p) still accepts after down")
        }
        let leftovers = Self.processes { cmd in
            cmd.contains(runDir.path) || (1...3).contains { cmd.contains("--port \(base + $0) ") } || cmd.contains(":\(redisPort)")
        }
        #expect(leftovers.isEmpty, "processes left behind: \(leftovers)")
        let again = try Self.run(["scripts/cluster", "status"], environment: env, timeout: 30)
        #expect(again.status != 0)
    }

    // MARK: - Helpers

    /// Runs `argv` (a path relative to the package root, or a command on PATH) with output to a file (no
    /// pipe to fill), killing it after `timeout` seconds.
    static func run(
        _ argv: [String], cwd: URL? = nil, environment: [String: String] = [:],
        timeout: TimeInterval
    ) throws -> (status: Int32, output: String) {
        let dir = cwd ?? root
        let p = Process()
        let first = argv[0]
        if first.contains("/") {
            p.executableURL = first.hasPrefix("/") ? URL(fileURLWithPath: first) : dir.appendingPathComponent(first)
            p.arguments = Array(argv.dropFirst())
        } else {
            p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            p.arguments = argv
        }
        p.currentDirectoryURL = dir
        var env = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("SWITCHBOARD_") && !$0.key.hasPrefix("SB_") }
        for (k, v) in environment { env[k] = v }
        p.environment = env
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("sb-deploy-\(UUID().uuidString).log")
        _ = FileManager.default.createFile(atPath: out.path, contents: nil)
        defer { try? FileManager.default.removeItem(at: out) }
        let h = try FileHandle(forWritingTo: out)
        p.standardOutput = h
        p.standardError = h
        p.standardInput = FileHandle.nullDevice
        try p.run()
        let deadline = Date().addingTimeInterval(timeout)
        while p.isRunning && Date() < deadline { usleep(50_000) }
        var timedOut = false
        if p.isRunning {
            // Never waitUntilExit() here: Foundation notices an exit only once every holder of the
            // child's inherited descriptors is gone, which a leaked grandchild can delay forever.
            timedOut = true
            kill(p.processIdentifier, SIGKILL)
            let grace = Date().addingTimeInterval(5)
            while p.isRunning && Date() < grace { usleep(50_000) }
        }
        try? h.close()
        let text = (try? String(contentsOf: out, encoding: .utf8)) ?? ""
        if timedOut { return (-1, "timed out after \(Int(timeout))s (\(argv.joined(separator: " ")))\n" + text) }
        return (p.terminationStatus, text)
    }

    static func tempDir(_ prefix: String) throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("\(prefix)-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    /// A base port B with B, B+1...B+3, B+11...B+13, B+20 and B+30 all free a moment ago.
    static func freePortBlock() throws -> Int {
        for _ in 0..<50 {
            // Below 10,000: clear of the ephemeral range (client sockets) and of `Socket.unusedLoopbackPort`.
            let base = Int.random(in: 20...95) * 100
            let ports = [base, base + 20, base + 30] + (1...3).flatMap { [base + $0, base + 10 + $0] }
            if ports.allSatisfy(portIsFree) { return base }
        }
        throw TestFailure("no free block of ports found")
    }

    static func portIsFree(_ port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = in_port_t(UInt16(port)).bigEndian
        return withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        } == 0
    }

    /// The next room `message` (skipping acks and other ops), or nil after `timeout`.
    static func nextMessage(_ c: WSClient, timeout: TimeInterval) throws -> ServerMessage? {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            guard let e = try c.next(timeout: max(0, deadline.timeIntervalSinceNow)) else { return nil }
            if case .text(let t) = e, let m = Array(t.utf8).withUnsafeBytes({ Envelope.decodeServer($0) }), m.op == "message" {
                return m
            }
        }
        return nil
    }

    /// name -> pid from the run dir's pid files ("pid marker" per file).
    static func recordedPids(_ runDir: URL) -> [String: Int32] {
        var out: [String: Int32] = [:]
        for f in (try? FileManager.default.contentsOfDirectory(atPath: runDir.path)) ?? [] where f.hasSuffix(".pid") {
            let text = (try? String(contentsOf: runDir.appendingPathComponent(f), encoding: .utf8)) ?? ""
            if let pid = text.split(separator: " ").first.flatMap({ Int32($0) }) { out[String(f.dropLast(4))] = pid }
        }
        return out
    }

    /// True while `pid` exists and is not a zombie.
    static func alive(_ pid: Int32) -> Bool {
        guard kill(pid, 0) == 0 else { return false }
        let stat = (try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8)) ?? ""
        guard let close = stat.lastIndex(of: ")") else { return false }
        return !stat[stat.index(after: close)...].trimmingCharacters(in: .whitespaces).hasPrefix("Z")
    }

    /// "pid: command line" of every live process whose command line satisfies `match`.
    static func processes(_ match: (String) -> Bool) -> [String] {
        var out: [String] = []
        for entry in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] {
            guard let pid = Int32(entry), pid != getpid(), alive(pid),
                let raw = FileManager.default.contents(atPath: "/proc/\(entry)/cmdline"), !raw.isEmpty
            else { continue }
            let cmd = String(decoding: raw.map { $0 == 0 ? 0x20 : $0 }, as: UTF8.self)
            if match(cmd) { out.append("\(pid): \(cmd)") }
        }
        return out
    }

    static func logs(_ runDir: URL) -> String {
        var s = ""
        for f in ((try? FileManager.default.contentsOfDirectory(atPath: runDir.path)) ?? []).sorted() where f.hasSuffix(".log") {
            let text = (try? String(contentsOf: runDir.appendingPathComponent(f), encoding: .utf8)) ?? ""
            s += "--- \(f)\n" + text.split(separator: "\n").suffix(20).joined(separator: "\n") + "\n"
        }
        return s
    }
}
