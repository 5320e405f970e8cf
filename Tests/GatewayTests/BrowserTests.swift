import Foundation
import Glibc
import Testing

/// The JS client in a real browser (issue 19): Debian's `chromium`, headless, loads
/// `clients/js/browser-test/index.html` from a loopback static server (`serve.py`), which imports
/// `clients/js/switchboard.js` and runs against two real nodes on a real `redis-server`: join, publish,
/// receive across nodes (chat-sized messages, compressed with the room's permessage-deflate stream), presence, then a SIGTERM drain of its node (the page asks for it: `POST /drain`),
/// reconnect to the other node, resume with `since`, every message once in order; then `online` and
/// `visibilitychange` cutting a 54 s backoff short. The page POSTs its
/// verdict to `/result`; any failed step, a page that never reports, or a node that does not drain fails
/// the test.
@Suite(.serialized) struct BrowserTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// `$CHROMIUM`, else Debian's `/usr/bin/chromium` (scripts/deps.sh test installs it).
    static var chromium: String? {
        let path = ProcessInfo.processInfo.environment["CHROMIUM"] ?? "/usr/bin/chromium"
        return FileManager.default.isExecutableFile(atPath: path) ? path : nil
    }

    /// Flags for headless Chromium as root in a container, talking to 127.0.0.1 only: no sandbox (root),
    /// no GPU, a throwaway profile, no background services, and every host name but 127.0.0.1 unresolvable.
    static func chromiumArguments(profile: String) -> [String] {
        [
            "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--user-data-dir=\(profile)",
            "--no-first-run", "--no-default-browser-check", "--disable-extensions", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--disable-default-apps", "--disable-domain-reliability",
            "--no-pings", "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1"
        ]
    }

    @Test func chromiumJoinsPublishesAndSurvivesADrain() throws {
        guard let chromium = Self.chromium else {
            Issue.record("chromium not found (bash scripts/deps.sh test installs Debian's; or set CHROMIUM)")
            return
        }
        let redis = try RedisServer()
        let drain = ["--drain-delay", "300ms", "--drain-window", "1s", "--drain-deadline", "8s"]
        let a = try GatewayProcess(["--redis-url", redis.url, "--node-id", "a", "--prefix", "t-browser:"] + drain, threads: 2)
        let b = try GatewayProcess(["--redis-url", redis.url, "--node-id", "b", "--prefix", "t-browser:"] + drain, threads: 2)
        defer { withExtendedLifetime((redis, a, b)) {} }
        for n in [a, b] {
            let deadline = Date().addingTimeInterval(10)
            while (try? httpGet(port: n.adminPort, path: "/ready"))?.0 != 200 && Date() < deadline { usleep(50_000) }
        }

        let server = try ChildProcess(
            "/usr/bin/env",
            [
                "python3", "-u", Self.root.appendingPathComponent("clients/js/browser-test/serve.py").path,
                Self.root.appendingPathComponent("clients/js").path, "\(a.pid)"
            ])
        defer { server.stop() }
        let portLine = try server.waitForLine(prefix: "PORT ", timeout: 10)
        let page = "http://127.0.0.1:\(portLine.dropFirst(5))/browser-test/index.html?a=ws://127.0.0.1:\(a.port)/ws&b=ws://127.0.0.1:\(b.port)/ws&room=browser"
        let profile = FileManager.default.temporaryDirectory.appendingPathComponent("switchboard-chromium-\(getpid())-\(a.port)").path
        defer { try? FileManager.default.removeItem(atPath: profile) }
        let browser = try ChildProcess(chromium, Self.chromiumArguments(profile: profile) + [page])
        defer { browser.stop() }

        let result: String
        do {
            result = String(try server.waitForLine(prefix: "RESULT ", timeout: 60).dropFirst(7))
        } catch {
            Issue.record("no verdict from the page: \(error)\npage log:\n\(server.output)\nchromium:\n\(browser.output.suffix(3000))")
            return
        }
        struct Verdict: Decodable { let passed: Int; let failed: Int; let steps: [String]; let failures: [String] }
        let verdict = try JSONDecoder().decode(Verdict.self, from: Data(result.utf8))
        #expect(verdict.failed == 0, "failed steps: \(verdict.failures)\npage log:\n\(server.output)")
        #expect(verdict.passed == 15, "steps: \(verdict.steps)")
        // Chromium negotiated permessage-deflate and took room-stream frames (context takeover) on node b. How
        // many depends on when its resume ended: a member out of step waits up to 32 messages for the next reset
        // point (copies compressed alone meanwhile), and only 50 messages follow the drain.
        #expect(try b.metric(#"switchboard_deflate_deliveries_total{context="room"}"#) ?? 0 > 0)
        #expect(a.waitForExit(timeout: 10) == 0, "node a drains and exits 0")
    }
}

/// A child process whose stdout and stderr are collected line by line, for waiting on a line that
/// announces something (a port, a verdict); stopped with SIGTERM, then SIGKILL after 5 s.
final class ChildProcess: @unchecked Sendable {
    let process = Process()
    private let lock = NSLock()
    private var text = ""

    init(_ executable: String, _ arguments: [String]) throws {
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        pipe.fileHandleForReading.readabilityHandler = { [weak self] h in
            let data = h.availableData
            if data.isEmpty { h.readabilityHandler = nil; return }
            guard let self else { return }
            self.lock.lock()
            self.text += String(decoding: data, as: UTF8.self)
            self.lock.unlock()
        }
        try process.run()
    }

    /// Everything written so far.
    var output: String {
        lock.lock()
        defer { lock.unlock() }
        return text
    }

    /// The first complete line starting with `prefix`; throws when `timeout` seconds pass or the process ends first.
    func waitForLine(prefix: String, timeout: TimeInterval) throws -> String {
        let deadline = Date().addingTimeInterval(timeout)
        var exited: Date? = nil
        while Date() < deadline {
            let lines = output.split(separator: "\n", omittingEmptySubsequences: false).dropLast()
            if let line = lines.first(where: { $0.hasPrefix(prefix) }) { return String(line) }
            // Exited: what it wrote last may still be in the pipe for a moment.
            if !process.isRunning {
                if let exited, Date().timeIntervalSince(exited) > 0.5 {
                    throw TestFailure("\(process.executableURL?.lastPathComponent ?? "child") exited (\(process.terminationStatus)) before a line '\(prefix)…'")
                }
                exited = exited ?? Date()
            }
            usleep(50_000)
        }
        throw TestFailure("timed out after \(timeout)s waiting for a line '\(prefix)…'")
    }

    func stop() {
        guard process.isRunning else { return }
        kill(process.processIdentifier, SIGTERM)
        let deadline = Date().addingTimeInterval(5)
        while process.isRunning && Date() < deadline { usleep(20_000) }
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
    }
}
