import Foundation
import Testing

/// The browser client (clients/js/switchboard.js) under Node with Debian's node-ws, against the real
/// binary: delivery, publish acks, a forced reconnect that resumes with `since` (no loss, no duplicate), and
/// the token provider.
@Suite struct JSClientTests {
    /// Runs `clients/js/<script>` with `arguments` under Node; returns its exit status and output.
    func node(_ script: String, _ arguments: [String]) throws -> (Int32, String) {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["node", root.appendingPathComponent("clients/js/\(script)").path] + arguments
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
        #expect(text.contains("2 passed, 0 failed"), "\(text)")
    }

    /// The browser client's token provider renews an expiring session (token_expiring) with no gap.
    @Test func browserClientRenewsItsTokenBeforeExpiry() throws {
        let secret = TestKeys.shared.secret
        let gw = try GatewayProcess(["--jwt-secret", secret, "--jwt-leeway", "0s", "--token-expiring-notice", "1s"], threads: 2)
        let (status, text) = try node("test-token.mjs", ["\(gw.port)", secret])
        #expect(status == 0, "\(text)")
        #expect(text.contains("1 passed, 0 failed"), "\(text)")
    }
}
