import Foundation
import Testing

/// The browser client (clients/js/switchboard.js) under Node with Debian's node-ws, against the real
/// binary: delivery, publish acks, and a forced reconnect that resumes with `since` (no loss, no duplicate).
@Suite struct JSClientTests {
    @Test func browserClientResumesAfterReconnect() throws {
        let gw = try GatewayProcess(threads: 2)
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["node", root.appendingPathComponent("clients/js/test.mjs").path, "\(gw.port)"]
        let out = Pipe()
        p.standardOutput = out
        p.standardError = out
        try p.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        let text = String(decoding: data, as: UTF8.self)
        #expect(p.terminationStatus == 0, "\(text)")
        #expect(text.contains("2 passed, 0 failed"), "\(text)")
    }

    /// The browser client's token provider renews an expiring session (token_expiring) with no gap.
    @Test func browserClientRenewsItsTokenBeforeExpiry() throws {
        let secret = TestKeys.shared.secret
        let gw = try GatewayProcess(["--jwt-secret", secret, "--jwt-leeway", "0s", "--token-expiring-notice", "1s"], threads: 2)
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["node", root.appendingPathComponent("clients/js/test-token.mjs").path, "\(gw.port)", secret]
        let out = Pipe()
        p.standardOutput = out
        p.standardError = out
        try p.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        let text = String(decoding: data, as: UTF8.self)
        #expect(p.terminationStatus == 0, "\(text)")
        #expect(text.contains("1 passed, 0 failed"), "\(text)")
    }
}
