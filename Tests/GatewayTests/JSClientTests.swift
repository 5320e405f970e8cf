import Foundation
import Testing

/// The browser client (clients/js/switchboard.js) under Node with Debian's node-ws, against the real
/// binary: delivery, publish acks, presence, a forced reconnect that resumes with `since` (no loss, no
/// duplicate), the reconnect made at once when the network returns, its exports against switchboard.d.ts,
/// its size budget, and the token provider. `tsc --noEmit` checks the declarations (Debian's node-typescript).
/// In a real browser: BrowserTests.
@Suite struct JSClientTests {
    /// Runs `clients/js/<script>` with `arguments` under Node; returns its exit status and output.
    func node(_ script: String, _ arguments: [String]) throws -> (Int32, String) {
        try run("node", [root.appendingPathComponent("clients/js/\(script)").path] + arguments)
    }

    var root: URL { URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent() }

    /// Runs `tool` (looked up on PATH) with `arguments`, killed after `timeout` seconds (a client that
    /// reconnects forever must not hang the suite); returns its exit status and output.
    func run(_ tool: String, _ arguments: [String], timeout: TimeInterval = 120) throws -> (Int32, String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["timeout", "\(Int(timeout))", tool] + arguments
        let out = Pipe()
        p.standardOutput = out
        p.standardError = out
        try p.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    @Test func browserClientResumesAfterReconnect() throws {
        let gw = try GatewayProcess(threads: 2)
        let (status, text) = try node("test.mjs", ["\(gw.port)"])
        #expect(status == 0, "\(text)")
        #expect(text.contains("5 passed, 0 failed"), "\(text)")
    }

    /// The browser client's token provider renews an expiring session (token_expiring) with no gap.
    @Test func browserClientRenewsItsTokenBeforeExpiry() throws {
        let secret = TestKeys.shared.secret
        let gw = try GatewayProcess(["--jwt-secret", secret, "--jwt-leeway", "0s", "--token-expiring-notice", "1s"], threads: 2)
        let (status, text) = try node("test-token.mjs", ["\(gw.port)", secret])
        #expect(status == 0, "\(text)")
        #expect(text.contains("1 passed, 0 failed"), "\(text)")
    }

    /// switchboard.d.ts type-checks, and types-check.ts (every declaration in use, one misuse that must be
    /// refused) compiles against it.
    @Test func typeDeclarationsCheckWithTsc() throws {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/tsc") else {
            Issue.record("tsc not found (bash scripts/deps.sh test installs Debian's node-typescript)")
            return
        }
        let (status, text) = try run("tsc", ["--noEmit", "-p", root.appendingPathComponent("clients/js").path])
        #expect(status == 0, "\(text)")
    }
}
