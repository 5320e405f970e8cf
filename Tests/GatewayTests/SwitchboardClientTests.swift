import Foundation
import Glibc
import Protocol
import SwitchboardClient
import Testing

/// The reference client against the real binary.
@Suite struct SwitchboardClientTests {
    final class Holder: @unchecked Sendable { var client: SwitchboardClient? }

    /// Released on a thread other than its loop's (a test dropping its clients after a failure), a client
    /// with an open connection closes it on the loop's next turn: no assertion, no callback to the freed
    /// client, nothing left open on the server.
    @Test func aClientReleasedOffItsLoopThreadClosesItsConnection() throws {
        let gw = try GatewayProcess(threads: 1)
        let loop = try ClientLoop()
        loop.start()
        defer { loop.stop() }
        let holder = Holder()
        holder.client = try SwitchboardClient(loop: loop, options: .init(port: gw.port, backoffBaseMs: 100, backoffCapMs: 1000, connectTimeoutMs: 5000))
        _ = loop.sync {
            holder.client?.join("released"); holder.client?.start(); return true
        }
        let deadline = Date().addingTimeInterval(5)
        while (try? gw.metric("switchboard_connections_open")) != 1 && Date() < deadline { usleep(20_000) }
        #expect(try gw.metric("switchboard_connections_open") == 1)
        holder.client = nil  // deinit runs here, on the test thread
        let closedBy = Date().addingTimeInterval(5)
        while (try? gw.metric("switchboard_connections_open")) != 0 && Date() < closedBy { usleep(20_000) }
        #expect(try gw.metric("switchboard_connections_open") == 0, "the released client's connection was closed")
    }
}

/// Token lifecycle in the reference client: a provider renews the session on `token_expiring`, so an
/// expiring token never ends it, and every message arrives exactly once.
@Suite struct SwitchboardClientTokenTests {
    @Test func tokenProviderRenewsBeforeExpiryWithoutAGap() throws {
        let keys = TestKeys.shared
        let gw = try GatewayProcess(["--jwt-secret", keys.secret, "--jwt-leeway", "0s", "--token-expiring-notice", "1s"], threads: 1)
        let loop = try ClientLoop()
        loop.start()
        defer { loop.stop() }
        final class Seen: @unchecked Sendable { var data: [String] = []; var ends: [ConnectionEnd] = []; var reasons: [SwitchboardClient.TokenRequest] = [] }
        let seen = Seen()
        let client = try SwitchboardClient(loop: loop, options: .init(port: gw.port, backoffBaseMs: 100, backoffCapMs: 1000))
        _ = loop.sync {
            client.tokenProvider = { reason, deliver in
                seen.reasons.append(reason)
                // Each token lives 3 s: the session outlives several of them.
                deliver(TokenFactory.make(claims: TokenFactory.claims(exp: TokenFactory.now + 3)))
            }
            client.onMessage = { _, _, data in seen.data.append(data.description) }
            client.onDisconnect = { seen.ends.append($0) }
            client.join("lobby")
            client.start()
            return true
        }
        let publisher = try WSClient(port: gw.port, path: "/ws", headers: [HTTPHeader("Authorization", "Bearer \(TokenFactory.make())")])
        var deadline = Date().addingTimeInterval(5)
        while loop.sync({ client.lastOffset(of: "lobby") == nil }) && Date() < deadline { usleep(20_000) }
        for n in 0..<40 {
            try publisher.sendOp(#"{"op":"publish","room":"lobby","data":{"n":\#(n)},"id":\#(n)}"#)
            usleep(150_000)  // 6 s of publishing: two token lifetimes
        }
        deadline = Date().addingTimeInterval(5)
        while loop.sync({ seen.data.count }) < 40 && Date() < deadline { usleep(50_000) }
        let (data, ends, reasons) = loop.sync { (seen.data, seen.ends, seen.reasons) }
        #expect(data == (0..<40).map { #"{"n":\#($0)}"# }, "every message once, in order")
        #expect(ends.isEmpty, "the session was never closed: \(ends)")
        #expect(reasons.first == .connect)
        #expect(reasons.filter { $0 == .renew }.count >= 2, "renewed on token_expiring: \(reasons)")
    }
}
