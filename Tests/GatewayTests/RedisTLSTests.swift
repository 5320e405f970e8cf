import ClusterBus
import Foundation
import Gateway
import Glibc
import Protocol
import Runtime
import TLS
import TestSupport
import Testing

/// `rediss://`: the bus against Debian's `redis-server` on `--tls-port` with a test CA. Trusted and named
/// right it carries room messages; a certificate that does not cover the name, or a CA we do not trust,
/// keeps the bus down with the reason in `/ready`'s last error, and plain TCP is never tried instead.
@Suite(.serialized) struct RedisTLSTests {
    final class Recorder: BusDelegate, @unchecked Sendable {
        let messages = Lock<[BusMessage]>([])
        func busDeliver(_ message: BusMessage) { messages.withLock { $0.append(message) } }
        func busStateChanged(_ state: BusState) {}
    }

    /// `redis-server` with TLS only (`--port 0`), the test CA's `server` leaf (127.0.0.1, localhost).
    final class TLSRedis {
        let port: Int
        let process: Process
        init(ca: TestCA, requireClientCertificate: Bool = false) throws {
            port = try freePort()
            process = Process()
            process.executableURL = URL(fileURLWithPath: RedisServer.binary)
            process.arguments = [
                "--port", "0", "--tls-port", "\(port)", "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                "--tls-cert-file", ca.path("server.pem"), "--tls-key-file", ca.path("server.key.pem"),
                "--tls-ca-cert-file", ca.caPath, "--tls-auth-clients", requireClientCertificate ? "yes" : "no",
                "--loglevel", "warning", "--protected-mode", "no"
            ]
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            try process.run()
            // Listening once a TCP connect succeeds (the TLS handshake is the bus's business).
            let deadline = Date().addingTimeInterval(5)
            while Date() < deadline {
                if (try? RawSocket(port: port)) != nil { return }
                usleep(20_000)
            }
            throw TestFailure("redis-server --tls-port did not listen on \(port)")
        }
        deinit {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
    }

    func makeBus(port: Int, tls: RedisTLSSettings, host: String = "127.0.0.1") throws -> (RedisBus, Recorder, EventLoop) {
        let loop = try EventLoop(index: 98)
        loop.start(name: "bus-tls-test")
        var configuration = RedisBusConfiguration(
            endpoint: RedisEndpoint(host: host, port: port, tls: true), prefix: "tls:", nodeID: "tls-unit",
            backoff: RedisBackoff(baseMilliseconds: 20, capMilliseconds: 200), heartbeatIntervalMilliseconds: 200, nodeTTLMilliseconds: 1000)
        configuration.tls = tls
        let bus = RedisBus(loop: loop, configuration: configuration)
        let recorder = Recorder()
        bus.start(delegate: recorder)
        return (bus, recorder, loop)
    }

    @Test func trustedServerCarriesRoomMessagesOverTLS() throws {
        let ca = try TestCA()
        let redis = try TLSRedis(ca: ca)
        let (bus, recorder, loop) = try makeBus(port: redis.port, tls: RedisTLSSettings(caFile: ca.caPath))
        defer { loop.stopAndWait(timeoutMilliseconds: 2000) }
        #expect(wait(5) { bus.state == .up }, "last error: \(bus.health.lastError ?? "none")")
        bus.subscribe(room: "secure")
        #expect(wait(3) { bus.metrics.subscribedRooms.load() == 1 })
        for i in 0..<50 { bus.publish(room: "secure", data: JSONFragment("\(i)"), idempotencyKey: nil) { _ in } }
        #expect(wait(5) { recorder.messages.withLock { $0.count } == 50 })
        let data = recorder.messages.withLock { $0.map { String(decoding: $0.data.bytes, as: UTF8.self) } }
        #expect(data == (0..<50).map(String.init), "every message once, in order, over TLS")
    }

    @Test func aCertificateThatDoesNotCoverTheNameKeepsTheBusDown() throws {
        let ca = try TestCA()
        let redis = try TLSRedis(ca: ca)
        let (bus, _, loop) = try makeBus(port: redis.port, tls: RedisTLSSettings(caFile: ca.caPath, serverName: "other.test"))
        defer { loop.stopAndWait(timeoutMilliseconds: 2000) }
        #expect(wait(3) { bus.health.lastError?.contains("certificate verification failed") == true }, "\(bus.health.lastError ?? "none")")
        #expect(bus.state == .down)
        #expect(wait(3) { bus.metrics.commandReconnects.load() >= 1 }, "retried with backoff, never downgraded")
        // The chain alone is good: without the name check the same server is accepted.
        let (lax, _, laxLoop) = try makeBus(port: redis.port, tls: RedisTLSSettings(caFile: ca.caPath, serverName: "other.test", verifyServerName: false))
        defer { laxLoop.stopAndWait(timeoutMilliseconds: 2000) }
        #expect(wait(5) { lax.state == .up })
    }

    @Test func anUntrustedCAOrAMissingClientCertificateKeepsTheBusDown() throws {
        let ca = try TestCA()
        let redis = try TLSRedis(ca: ca)
        // The system store does not know the test CA.
        let (bus, _, loop) = try makeBus(port: redis.port, tls: RedisTLSSettings())
        defer { loop.stopAndWait(timeoutMilliseconds: 2000) }
        #expect(wait(3) { bus.health.lastError?.contains("certificate verification failed") == true }, "\(bus.health.lastError ?? "none")")
        #expect(bus.state == .down)

        let strict = try TLSRedis(ca: ca, requireClientCertificate: true)
        let (anonymous, _, anonymousLoop) = try makeBus(port: strict.port, tls: RedisTLSSettings(caFile: ca.caPath))
        defer { anonymousLoop.stopAndWait(timeoutMilliseconds: 2000) }
        #expect(wait(3) { anonymous.health.lastError != nil && anonymous.metrics.commandReconnects.load() >= 1 })
        #expect(anonymous.state == .down)
        let pair = TLSCertificatePair(certificatePath: ca.path("server.pem"), keyPath: ca.path("server.key.pem"))
        let (mutual, _, mutualLoop) = try makeBus(port: strict.port, tls: RedisTLSSettings(caFile: ca.caPath, certificate: pair))
        defer { mutualLoop.stopAndWait(timeoutMilliseconds: 2000) }
        #expect(wait(5) { mutual.state == .up }, "client certificate accepted: \(mutual.health.lastError ?? "none")")
    }

    @Test func flagsParseAndPairUp() throws {
        let c = try Config.parse(
            arguments: [
                "--redis-url", "rediss://:pw@127.0.0.1:6380/0", "--redis-tls-ca", "/ca.pem", "--redis-tls-cert", "/c.pem",
                "--redis-tls-key", "/k.pem", "--redis-tls-server-name", "redis.internal", "--redis-tls-verify-name", "no"
            ],
            environment: [:])
        #expect(
            c.redisTLS
                == RedisTLSSettings(
                    caFile: "/ca.pem", certificate: TLSCertificatePair(certificatePath: "/c.pem", keyPath: "/k.pem"),
                    serverName: "redis.internal", verifyServerName: false))
        #expect(c.loggable.first { $0.0 == "redis-url" }?.1 == "rediss://:***@127.0.0.1:6380/0")
        #expect(throws: Config.Invalid.self) { try Config.parse(arguments: ["--redis-tls-cert", "/c.pem"], environment: [:]) }
        #expect(throws: Config.Invalid.self) { try Config.parse(arguments: ["--redis-tls-verify-name", "maybe"], environment: [:]) }
    }

    @Test func aGatewayNodeRunsItsBusOverRediss() throws {
        let ca = try TestCA()
        let redis = try TLSRedis(ca: ca)
        let gw = try GatewayProcess(["--redis-url", "rediss://127.0.0.1:\(redis.port)/0", "--redis-tls-ca", ca.caPath, "--node-id", "tls-node"])
        let deadline = Date().addingTimeInterval(10)
        while Date() < deadline, (try? httpGet(port: gw.adminPort, path: "/ready"))?.0 != 200 { usleep(50_000) }
        let (status, body) = try httpGet(port: gw.adminPort, path: "/ready")
        #expect(status == 200 && body.contains("\"commands\":\"up\",\"subscriber\":\"up\""), "\(body)")
        let member = try WSClient(port: gw.port)
        #expect(try member.join("secure").op == "joined")
        try member.sendOp(#"{"op":"publish","room":"secure","data":"over TLS","id":1}"#)
        let got = try member.drainJSON(quiet: 1.0)
        #expect(got.contains { $0.op == "ack" } && got.contains { $0.op == "message" })
    }
}
