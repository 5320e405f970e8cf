import Foundation
import Glibc
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
        _ = loop.sync { holder.client?.join("released"); holder.client?.start(); return true }
        let deadline = Date().addingTimeInterval(5)
        while (try? gw.metric("switchboard_connections_open")) != 1 && Date() < deadline { usleep(20_000) }
        #expect(try gw.metric("switchboard_connections_open") == 1)
        holder.client = nil   // deinit runs here, on the test thread
        let closedBy = Date().addingTimeInterval(5)
        while (try? gw.metric("switchboard_connections_open")) != 0 && Date() < closedBy { usleep(20_000) }
        #expect(try gw.metric("switchboard_connections_open") == 0, "the released client's connection was closed")
    }
}
