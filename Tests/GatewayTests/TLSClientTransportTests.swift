import Foundation
import Glibc
import Protocol
import Runtime
import TLS
import Testing

@testable import SwitchboardClient

/// The bench's TLS client (a client `TLSTransport` made before its socket, under a `ClientConnection`) against the real binary: the
/// handshake starts from the queued upgrade, messages echo both ways, and a plain port is a failure, not a hang.
@Suite(.serialized) struct TLSClientTransportTests {
    static let metrics = TLSMetrics()

    /// Records what one connection heard; every call is on the loop thread, the test reads after `sync`.
    final class Recorder: ClientConnectionDelegate, @unchecked Sendable {
        var opened = false
        var texts: [String] = []
        var closed: ConnectionEnd?
        func clientOpened(_ client: ClientConnection) { opened = true }
        func clientText(_ client: ClientConnection, _ text: UnsafeRawBufferPointer) { texts.append(String(decoding: text, as: UTF8.self)) }
        func clientClosed(_ client: ClientConnection, _ cause: ConnectionEnd) { closed = cause }
    }

    func connect(port: Int, tls: TLSClientContext, loop: ClientLoop, recorder: Recorder) throws -> ClientConnection {
        var endpoint = try Endpoint(host: "127.0.0.1", port: port, path: "/echo")
        let metrics = Self.metrics
        endpoint.transportFactory = { tls.makeTransport(serverName: "localhost", verifyName: false, metrics: metrics) }
        let e = endpoint
        return loop.sync {
            let c = ClientConnection(loop: loop, delegate: recorder, transportFor: e)
            c.connect(e)
            return c
        }
    }

    func wait(_ loop: ClientLoop, _ what: String, _ condition: @escaping @Sendable () -> Bool) throws {
        let deadline = Date().addingTimeInterval(TestTiming.seconds(10))
        while Date() < deadline {
            if loop.sync(condition) { return }
            usleep(20_000)
        }
        throw TestFailure("timed out waiting for \(what)")
    }

    @Test func upgradesAndEchoesOverTLSAndFailsAgainstAPlainPort() throws {
        let ca = try TestCA()
        let gw = try GatewayProcess(["--echo-path", "/echo", "--tls-cert", ca.path("server.pem"), "--tls-key", ca.path("server.key.pem")], threads: 1)
        let loop = try ClientLoop()
        loop.start()
        defer { loop.stop() }
        let tls = try TLSClientContext(caFile: nil, verifyPeer: false, alpn: ["http/1.1"])
        let recorder = Recorder()
        let c = try connect(port: gw.port, tls: tls, loop: loop, recorder: recorder)
        try wait(loop, "the upgrade over TLS") { recorder.opened || recorder.closed != nil }
        #expect(loop.sync { recorder.closed } == nil)
        // A message larger than one TLS record (16 KiB) goes out and comes back whole.
        let big = String(repeating: "x", count: 40_000)
        loop.sync {
            c.sendText(Array("hello".utf8)); c.sendText(Array(big.utf8))
        }
        try wait(loop, "both echoes") { recorder.texts.count >= 2 }
        #expect(loop.sync { recorder.texts } == ["hello", big])
        #expect(try gw.metric("switchboard_tls_handshakes_total{listener=\"public\",result=\"ok\",version=\"1.3\"}") == 1)
        loop.sync { c.closeNormally() }

        // TLS to a plain port: the gateway answers the ClientHello with 400 in clear, which is no TLS record.
        let plain = try GatewayProcess(["--echo-path", "/echo"], threads: 1)
        let refused = Recorder()
        _ = try connect(port: plain.port, tls: tls, loop: loop, recorder: refused)
        try wait(loop, "the failed handshake") { refused.closed != nil }
        #expect(loop.sync { refused.opened } == false)
    }
}
