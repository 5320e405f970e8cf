import Foundation
import Runtime
import TestSupport
import Testing

@testable import ClusterBus

extension RedisClusterRouterTests {
    /// A primary that stops answering without closing (SIGSTOP) does not hold the commands written to it for
    /// as long as it is stopped: after `stallLimitMs` with nothing read, its connection is closed and they
    /// complete with nil; once it answers again, the next command opens a fresh connection.
    @Test func aStalledPrimaryFailsItsPendingCommandsInsteadOfHoldingThem() throws {
        let cluster = try RedisTestCluster(masters: 3)
        let loop = try EventLoop(index: 93)
        loop.start(name: "router-stall-test")
        let keeper = LoopKeeper(loop)
        defer { keeper.stop() }
        nonisolated(unsafe) let router = RedisClusterRouter(loop: loop, seeds: [("127.0.0.1", cluster.ports[0])])
        keeper.keep(router)
        defer { loop.execute { router.stop() } }
        let refreshed: Result<Void, RedisClusterError>? = onLoop(loop) { done in
            router.stallLimitMs = 400
            router.refresh { done($0) }
        }
        guard case .success? = refreshed else { Issue.record("refresh: \(String(describing: refreshed))"); return }
        let slot = RedisClusterSlot.slot(of: "stall")
        let owner = try #require(onLoop(loop) { done in done(router.map?.primary(ofSlot: slot)?.port) } ?? nil)
        let set: RedisReply?? = onLoop(loop) { done in router.send(RedisCommand(["SET", "stall", "1"]), slot: slot) { done($0) } }
        #expect(set == .some(.status("OK")), "\(String(describing: set))")

        cluster.pause(port: owner)
        defer { cluster.resume(port: owner) }
        let started = Date()
        let stalled: RedisReply?? = onLoop(loop) { done in router.send(RedisCommand(["GET", "stall"]), slot: slot) { done($0) } }
        #expect(stalled == .some(nil), "answered nil (outcome unknown) instead of waiting for the stopped node")
        #expect(Date().timeIntervalSince(started) < 3, "within a few stall limits")

        cluster.resume(port: owner)
        var again: RedisReply??
        #expect(
            wait(5) {
                again = onLoop(loop) { done in router.send(RedisCommand(["GET", "stall"]), slot: slot) { done($0) } }
                return again == .some(.string(Array("1".utf8)))
            }, "\(String(describing: again))")
    }
}
