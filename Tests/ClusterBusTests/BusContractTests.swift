import ClusterBus
import Foundation
import Glibc
import Protocol
import Runtime
import Synchronization
import TestSupport
import Testing

/// One contract, two buses: every test here runs against `LocalRooms` and against `RedisBus` on a real
/// `redis-server`, through the `RoomBus` role only, in the order the hub calls it (subscribe before join,
/// unsubscribe after the last member leaves).
@Suite(.serialized) struct BusContractTests {
    enum Backend: String, CaseIterable, CustomTestStringConvertible {
        case local, redis
        var testDescription: String { rawValue }
    }

    final class Recorder: BusDelegate, @unchecked Sendable {
        let messages = Lock<[BusMessage]>([])
        let states = Lock<[BusState]>([])
        func busDeliver(_ message: BusMessage) { messages.withLock { $0.append(message) } }
        func busStateChanged(_ state: BusState) { states.withLock { $0.append(state) } }
    }

    /// A started bus with its services and what to stop afterwards.
    final class Harness {
        let services: ClusterServices
        let recorder = Recorder()
        let redis: Process?
        let loop: EventLoop?
        let redisBus: RedisBus?

        init(_ backend: Backend, prefix: String) throws {
            switch backend {
            case .local:
                services = .local(historySize: 100, historyTTLMilliseconds: 60_000, idempotencyWindowMilliseconds: 60_000)
                redis = nil
                loop = nil
                redisBus = nil
            case .redis:
                let port = try freeTCPPort()
                let redis = try startRedis(port: port)
                let loop = try EventLoop(index: 98)
                loop.start(name: "contract-bus")
                let bus = RedisBus(
                    loop: loop,
                    configuration: RedisBusConfiguration(
                        endpoint: RedisEndpoint(host: "127.0.0.1", port: port), prefix: prefix, nodeID: "contract", historySize: 100,
                        historyTTLMilliseconds: 60_000, backoff: RedisBackoff(baseMilliseconds: 20, capMilliseconds: 200),
                        heartbeatIntervalMilliseconds: 200, nodeTTLMilliseconds: 1000, idempotencyWindowMilliseconds: 60_000))
                services = .redis(bus)
                self.redis = redis
                self.loop = loop
                self.redisBus = bus
            }
            services.start(delegate: recorder)
            guard wait(10, { services.state == .up }) else { throw ContractFailure("bus not up") }
        }

        deinit {
            loop?.stopAndWait(timeoutMilliseconds: 2000)
            if let redis {
                kill(redis.processIdentifier, SIGCONT)
                kill(redis.processIdentifier, SIGKILL)
                redis.waitUntilExit()
            }
        }

        var rooms: RoomBus { services.rooms }

        func publish(_ room: String, _ data: String, key: String? = nil) -> Result<StreamOffset, BusError>? {
            sync { done in rooms.publish(room: room, data: JSONFragment(data), idempotencyKey: key) { done($0) } }
        }

        func join(_ room: String, since: StreamOffset?) -> JoinResult? {
            let r: Result<JoinResult, BusError>? = sync { done in rooms.join(room: room, since: since) { done($0) } }
            return try? r?.get()
        }
    }

    struct ContractFailure: Error, CustomStringConvertible {
        let description: String
        init(_ d: String) { description = d }
    }

    /// Issue 11 finding 5: join an empty room, keep the offset, leave, publish 0-3 messages, rejoin with
    /// `since`: recovered, with exactly the messages published meanwhile (LocalBus answered false before).
    @Test(arguments: Backend.allCases, 0...3)
    func offsetOfAnEmptyRoomSurvivesLeavingIt(backend: Backend, published: Int) throws {
        let h = try Harness(backend, prefix: "c5-\(published):")
        let room = "empty-\(published)"
        h.rooms.subscribe(room: room)
        let first = try #require(h.join(room, since: nil))
        #expect(!first.recovered && first.replay.isEmpty)
        h.rooms.unsubscribe(room: room)
        usleep(50_000)  // Redis: the UNSUBSCRIBE goes out at the end of the bus loop's tick
        var offsets: [StreamOffset] = []
        for i in 0..<published {
            guard case .success(let o)? = h.publish(room, "\(i)") else { Issue.record("publish \(i) failed"); return }
            offsets.append(o)
        }
        h.rooms.subscribe(room: room)
        let again = try #require(h.join(room, since: first.offset))
        #expect(again.recovered, "\(backend): an offset taken in an empty room must stay valid after leaving it")
        #expect(again.replay.map(\.offset) == offsets)
        #expect(again.replay.map(\.data.description) == (0..<published).map(String.init))
        #expect(again.offset == (offsets.last ?? first.offset))
    }

    /// A retry with the same idempotency key answers the first offset, stores nothing and delivers nothing;
    /// keys are per room, and publishes without a key are never merged.
    @Test(arguments: Backend.allCases)
    func idempotencyKeyStoresOncePerRoom(backend: Backend) throws {
        let h = try Harness(backend, prefix: "cidem:")
        h.rooms.subscribe(room: "r")
        let base = try #require(h.join("r", since: nil))
        usleep(50_000)
        guard case .success(let o1)? = h.publish("r", "\"a\"", key: "s1:7") else { Issue.record("first publish failed"); return }
        guard case .success(let o2)? = h.publish("r", "\"a-retry\"", key: "s1:7") else { Issue.record("retry failed"); return }
        #expect(o2 == o1, "a retry answers the first offset")
        guard case .success(let o3)? = h.publish("r", "\"b\"", key: "s1:8") else { Issue.record("publish b failed"); return }
        guard case .success(let o4)? = h.publish("r", "\"c\"") else { Issue.record("publish c failed"); return }
        guard case .success(let o5)? = h.publish("r", "\"c\"") else { Issue.record("publish c again failed"); return }
        #expect(Set([o1, o3, o4, o5]).count == 4)
        guard case .success(let other)? = h.publish("other", "\"x\"", key: "s1:7") else { Issue.record("other room failed"); return }
        #expect(other.epoch != o1.epoch || other != o1, "keys are per room")
        let history = try #require(h.join("r", since: base.offset))
        #expect(history.recovered && history.replay.map(\.data.description) == ["\"a\"", "\"b\"", "\"c\"", "\"c\""])
        #expect(wait(3) { h.recorder.messages.withLock { $0.filter { $0.room == "r" }.count } >= 4 })
        usleep(200_000)
        #expect(h.recorder.messages.withLock { $0.filter { $0.room == "r" }.map(\.offset) } == [o1, o3, o4, o5], "the retry was not delivered")
        let tooLong = h.publish("r", "1", key: String(repeating: "k", count: maxIdempotencyKeyBytes + 1))
        guard case .failure(.invalid)? = tooLong else { Issue.record("an over-long key must be refused, got \(String(describing: tooLong))"); return }
    }

    /// Issue 11 finding 1 at the bus: a publish handed to a frozen Redis answers `unknown` (not `unavailable`),
    /// a publish while the link is down answers `unavailable` at once, and the retry of the unknown one with
    /// its key after the thaw is stored exactly once (whichever of the two Redis ran first).
    @Test func publishIntoAFrozenRedisIsUnknownAndItsRetryIsStoredOnce() throws {
        let h = try Harness(.redis, prefix: "cfreeze:")
        let redis = try #require(h.redis)
        h.rooms.subscribe(room: "f")
        let base = try #require(h.join("f", since: nil))
        guard case .success? = h.publish("f", "\"before\"", key: "k0") else { Issue.record("publish before the freeze failed"); return }
        kill(redis.processIdentifier, SIGSTOP)
        let frozen: Result<StreamOffset, BusError>? = sync(timeout: 10) { done in
            h.rooms.publish(room: "f", data: JSONFragment("\"x\""), idempotencyKey: "k1") { done($0) }
        }
        guard case .failure(.unknown)? = frozen else {
            kill(redis.processIdentifier, SIGCONT)
            Issue.record("a publish handed to a frozen Redis must be unknown, got \(String(describing: frozen))")
            return
        }
        #expect(h.services.state == .down)
        let t0 = monotonicMilliseconds()
        let down = h.publish("f", "\"y\"", key: "k2")
        let took = monotonicMilliseconds() - t0
        guard case .failure(.unavailable)? = down else { Issue.record("expected unavailable while down, got \(String(describing: down))"); return }
        #expect(took < 100, "never handed to Redis: answered at once (\(took) ms)")
        kill(redis.processIdentifier, SIGCONT)
        #expect(wait(10) { h.services.state == .up })
        guard case .success(let retried)? = h.publish("f", "\"x-retry\"", key: "k1") else { Issue.record("retry failed"); return }
        let history = try #require(h.join("f", since: base.offset))
        let data = history.replay.map(\.data.description)
        #expect(data.filter { $0.hasPrefix("\"x") }.count == 1, "stored exactly once: \(data)")
        #expect(history.replay.first { $0.data.description.hasPrefix("\"x") }?.offset == retried)
        #expect(!data.contains("\"y\""), "a refused publish is never stored")
        #expect((h.redisBus?.metrics.publishUnknown.load() ?? 0) >= 1)
    }
}
