import ClusterBus
import Foundation
import Glibc
import Protocol
import Runtime
import TestSupport
import Testing

/// `RedisBus` on a real gateway `EventLoop` against a real `redis-server`, without the gateway around it.
@Suite(.serialized) struct RedisBusTests {
    final class Recorder: BusDelegate, @unchecked Sendable {
        let messages = Lock<[BusMessage]>([])
        let states = Lock<[BusState]>([])
        func busDeliver(_ message: BusMessage) { messages.withLock { $0.append(message) } }
        func busStateChanged(_ state: BusState) { states.withLock { $0.append(state) } }
    }

    func makeBus(port: Int, prefix: String) throws -> (RedisBus, Recorder, EventLoop) {
        let loop = try EventLoop(index: 99)
        loop.start(name: "bus-test")
        let bus = RedisBus(
            loop: loop,
            configuration: RedisBusConfiguration(
                endpoint: RedisEndpoint(host: "127.0.0.1", port: port), prefix: prefix, nodeID: "unit",
                backoff: RedisBackoff(baseMilliseconds: 20, capMilliseconds: 200), heartbeatIntervalMilliseconds: 200, nodeTTLMilliseconds: 1000))
        let recorder = Recorder()
        bus.start(delegate: recorder)
        return (bus, recorder, loop)
    }

    @Test func publishWhileRedisIsUnreachableFailsWithUnavailableAndRetriesWithBackoff() throws {
        let port = try freeTCPPort()
        let (bus, _, loop) = try makeBus(port: port, prefix: "u1:")
        // Wait for the loop thread to leave before `bus` is released: its reconnect timers call back into the
        // bus (unowned), and a bare stop() let one fire after the test returned (a TSan run crashed on it).
        defer { loop.stopAndWait(timeoutMilliseconds: 2000) }
        let result = sync { done in bus.publish(room: "r", data: JSONFragment("1"), idempotencyKey: nil) { done($0) } }
        guard case .failure(.unavailable)? = result else {
            Issue.record("expected unavailable, got \(String(describing: result))")
            return
        }
        let joined = sync { done in bus.join(room: "r", since: nil) { done($0) } }
        if case .success? = joined { Issue.record("join must fail while down") }
        #expect(bus.state == .down)
        #expect(wait(3) { bus.metrics.commandReconnects.load() >= 3 }, "reconnects keep coming (backoff capped at 200 ms)")
    }

    @Test func busComesUpWhenRedisAppearsAndDeliversEachMessageOnce() throws {
        let port = try freeTCPPort()
        let (bus, recorder, loop) = try makeBus(port: port, prefix: "u2:")
        defer { loop.stop() }
        usleep(100_000)
        let redis = try startRedis(port: port)
        // The bus loop stops before Redis does: its heartbeat must not write to a dead server.
        defer { loop.stopAndWait(timeoutMilliseconds: 2000); kill(redis.processIdentifier, SIGKILL); redis.waitUntilExit() }
        #expect(wait(5) { bus.state == .up })
        #expect(recorder.states.withLock { $0 } == [.up])
        bus.subscribe(room: "r")
        bus.setPresence(room: "r", localCount: 2)
        bus.setPresenceUser(room: "r", user: "alice", present: true)
        let joined = sync { done in bus.join(room: "r", since: nil) { done($0) } }
        guard case .success(let j)? = joined else {
            Issue.record("join failed: \(String(describing: joined))")
            return
        }
        #expect(j.offset.sequence == 0 && j.offset.milliseconds == 0, "an empty history starts at 0-0")
        var offsets: [StreamOffset] = []
        for i in 0..<5 {
            let r = sync { done in bus.publish(room: "r", data: JSONFragment("{\"i\":\(i)}"), idempotencyKey: nil) { done($0) } }
            guard case .success(let o)? = r else { Issue.record("publish failed"); return }
            #expect(o.epoch == j.offset.epoch, "the join created the history's epoch")
            offsets.append(o)
        }
        #expect(wait(3) { recorder.messages.withLock { $0.count } == 5 })
        usleep(200_000)
        let got = recorder.messages.withLock { $0 }
        #expect(got.map(\.offset) == offsets)
        #expect(got.map(\.data.description) == (0..<5).map { "{\"i\":\($0)}" })
        let count = sync { done in bus.presence(room: "r") { done($0) } }
        guard case .success(let n)? = count else { Issue.record("presence failed"); return }
        #expect(n == PresenceCount(connections: 2, users: 1))
        let resumed = sync { done in bus.join(room: "r", since: offsets[1]) { done($0) } }
        guard case .success(let rj)? = resumed else { Issue.record("resume failed"); return }
        #expect(rj.recovered && rj.replay.map(\.offset) == Array(offsets[2...]))
        let stopped = sync { done in bus.shutdown { done(true) } }
        #expect(stopped == true)
        #expect(bus.state == .down)
    }
}

func startRedis(port: Int) throws -> Process {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/redis-server")
    p.arguments = ["--port", "\(port)", "--save", "", "--appendonly", "no", "--bind", "127.0.0.1", "--daemonize", "no", "--loglevel", "warning"]
    p.standardOutput = FileHandle.nullDevice
    p.standardError = FileHandle.nullDevice
    try p.run()
    return p
}

/// A loopback port that was free a moment ago, below the ephemeral range (see `Socket.unusedLoopbackPort`).
func freeTCPPort() throws -> Int { try Socket.unusedLoopbackPort() }
