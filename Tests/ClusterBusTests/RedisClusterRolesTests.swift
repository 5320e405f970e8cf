import ClusterBus
import Foundation
import Glibc
import Protocol
import Runtime
import TestSupport
import Testing

/// The roles beside rooms on Redis Cluster (`RedisClusterBus+Registry`, `+Control`, `+Sessions`): three bus
/// "nodes" on a real three-master cluster on loopback, a short registry TTL so a dead node is noticed fast.
@Suite(.serialized) struct RedisClusterRolesTests {
    typealias Recorder = RedisClusterBusTests.Recorder

    func nodes(_ cluster: RedisTestCluster, prefix: String) throws -> [(bus: RedisClusterBus, loop: EventLoop)] {
        try (0..<3).map { i in try node(i, cluster, prefix: prefix) }
    }

    /// Bus "n\(i)" on its own loop, seeded with the cluster's node i, heartbeat 200 ms, TTL 800 ms.
    func node(_ i: Int, _ cluster: RedisTestCluster, prefix: String, loopIndex: Int? = nil) throws -> (bus: RedisClusterBus, loop: EventLoop) {
        let loop = try EventLoop(index: loopIndex ?? 80 + i)
        loop.start(name: "roles-\(loopIndex ?? i)")
        let bus = RedisClusterBus(
            loop: loop, seeds: [("127.0.0.1", cluster.ports[i])], prefix: prefix, nodeID: "n\(i)",
            heartbeatIntervalMilliseconds: 200, nodeTTLMilliseconds: 800)
        bus.setNodeInfoProvider { NodeInfo(address: "127.0.0.1:\(7000 + i)", connections: i) }
        bus.start(delegate: Recorder())
        return (bus, loop)
    }

    func others(_ bus: RedisClusterBus) -> [String]? {
        guard case .success(let nodes)? = sync({ done in bus.otherNodes { done($0) } }) else { return nil }
        return nodes.map(\.id)
    }

    func presence(_ bus: RedisClusterBus, _ room: String) -> PresenceCount? {
        guard case .success(let p)? = sync({ done in bus.presence(room: room) { done($0) } }) else { return nil }
        return p
    }

    @Test func theRegistryListsEveryNodeAndADeadNodesPresenceIsRemoved() throws {
        let cluster = try RedisTestCluster(masters: 3)
        let n = try nodes(cluster, prefix: "rg:")
        // n1's and n2's loops are stopped by the test itself.
        defer { n[0].loop.stopAndWait(timeoutMilliseconds: 2000) }
        #expect(wait(5) { n.allSatisfy { $0.bus.state == .up } })
        #expect(wait(5) { others(n[0].bus) == ["n1", "n2"] && others(n[1].bus) == ["n0", "n2"] && others(n[2].bus) == ["n0", "n1"] })
        let listed = sync { done in n[0].bus.otherNodes { done($0) } }
        guard case .success(let infos)? = listed else { Issue.record("otherNodes: \(String(describing: listed))"); return }
        #expect(infos.map(\.info.address) == ["127.0.0.1:7001", "127.0.0.1:7002"] && infos.map(\.info.connections) == [1, 2])

        // One member per node in rooms on all three shards.
        let keys = RedisClusterKeys(prefix: "rg:", nodeID: "x")
        let rooms = ["a", "b", "c", "d", "e", "f"]
        #expect(Set(rooms.map { keys.slot(ofRoom: $0) * 3 / 16384 }).count == 3, "rooms on all three shards")
        for (i, x) in n.enumerated() {
            for room in rooms {
                x.bus.setPresence(room: room, localCount: 1)
                x.bus.setPresenceUser(room: room, user: "u\(i)", present: true)
            }
        }
        #expect(wait(5) { rooms.allSatisfy { presence(n[0].bus, $0) == PresenceCount(connections: 3, users: 3) } })

        // The drain semaphore: one slot, held by n0, refused to n1 until released.
        #expect(sync { done in n[0].bus.acquireDrainSlot(maxDraining: 1, ttlMilliseconds: 10_000) { done($0) } } == true)
        #expect(sync { done in n[1].bus.acquireDrainSlot(maxDraining: 1, ttlMilliseconds: 10_000) { done($0) } } == false)
        n[0].bus.releaseDrainSlot()  // asynchronous: n1 gets the slot once the release reached Redis
        #expect(wait(2) { sync { done in n[1].bus.acquireDrainSlot(maxDraining: 1, ttlMilliseconds: 10_000) { done($0) } } == true })
        n[1].bus.releaseDrainSlot()

        // n2 dies without a word (its loop stops: no heartbeat, no leave): after TTL + interval its
        // presence is gone from every room's shard and it is no longer listed.
        let died = Date()
        n[2].loop.stopAndWait(timeoutMilliseconds: 2000)
        #expect(wait(5) { rooms.allSatisfy { presence(n[0].bus, $0) == PresenceCount(connections: 2, users: 2) } })
        let gone = Date().timeIntervalSince(died)
        #expect(gone < 3.0, "dead node's presence removed after \(gone) s (TTL 0.8 s + interval 0.2 s)")
        #expect(others(n[0].bus) == ["n1"])
        let leftover = RedisTestCluster.cli(cluster.ports[0], ["-c", "EXISTS", "rg:{nodes}node-rooms:n2"])
        #expect(leftover.trimmingCharacters(in: .whitespacesAndNewlines) == "0", "node-rooms of n2: \(leftover)")

        // n1 dies and comes straight back under its id: its key never expires (the new process refreshes it),
        // so only the restart's own clean-up can remove the old process's entries.
        n[1].loop.stopAndWait(timeoutMilliseconds: 2000)
        let again = try node(1, cluster, prefix: "rg:", loopIndex: 84)
        defer { again.loop.stopAndWait(timeoutMilliseconds: 2000) }
        #expect(wait(5) { rooms.allSatisfy { presence(n[0].bus, $0) == PresenceCount(connections: 1, users: 1) } })
        again.bus.setPresence(room: "a", localCount: 2)
        #expect(wait(5) { presence(n[0].bus, "a") == PresenceCount(connections: 3, users: 1) })

        // It stops cleanly: its entries and registry key go at once.
        _ = sync { done in again.bus.shutdown { done(true) } }
        #expect(presence(n[0].bus, "a") == PresenceCount(connections: 1, users: 1))
        #expect(others(n[0].bus) == [])
    }

    @Test func serverAPICommandsHistorySessionsAndAnalyticsSpanTheNodes() throws {
        let cluster = try RedisTestCluster(masters: 3)
        let n = try nodes(cluster, prefix: "ct:")
        defer { for x in n { x.loop.stopAndWait(timeoutMilliseconds: 2000) } }
        #expect(wait(5) { n.allSatisfy { $0.bus.state == .up } })
        for (i, x) in n.enumerated() {
            x.bus.setControlHandler { cmd, reply in reply(ControlAnswer(node: "n\(i)", affected: cmd.user == "bob" ? i + 1 : 0)) }
        }
        // Every node subscribes the API channel on the `{nodes}` shard: the command from n1 reaches all three.
        var outcome: ControlOutcome?
        #expect(
            wait(5) {
                let r = sync { done in n[1].bus.sendControl(ControlCommand(kind: .disconnect, user: "bob"), timeoutMilliseconds: 1000) { done($0) } }
                if case .success(let o)? = r { outcome = o }
                return outcome?.answers.count == 3
            })
        #expect(outcome?.expectedNodes == 3 && Set(outcome?.answers.map(\.node) ?? []) == ["n0", "n1", "n2"] && outcome?.affected == 6)

        // History written through n0 reads the same on n2.
        let room = "hist"
        n[0].bus.subscribe(room: room)
        guard case .success? = sync({ done in n[0].bus.join(room: room, since: nil) { done($0) } }) else { Issue.record("join"); return }
        for i in 0..<3 {
            let r = sync { done in n[0].bus.publish(room: room, data: JSONFragment("\(i)"), idempotencyKey: nil) { done($0) } }
            guard case .success? = r else { Issue.record("publish \(i): \(String(describing: r))"); return }
        }
        let page = sync { done in n[2].bus.history(room: room, from: nil, newestFirst: false, limit: 10) { done($0) } }
        guard case .success(let p)? = page else { Issue.record("history: \(String(describing: page))"); return }
        #expect(p.messages.map { String(decoding: $0.data.bytes, as: UTF8.self) } == ["0", "1", "2"])
        let newest = sync { done in n[1].bus.history(room: room, from: nil, newestFirst: true, limit: 1) { done($0) } }
        guard case .success(let q)? = newest else { Issue.record("history newest: \(String(describing: newest))"); return }
        #expect(q.messages.map(\.offset) == [p.messages[2].offset])

        // A session record written on n0 is read on n1 and n2; an unknown one is nil.
        n[0].bus.storeSession(key: "pid-1", value: Array("state".utf8), ttlMilliseconds: 10_000)
        #expect(wait(3) { sync { done in n[1].bus.loadSession(key: "pid-1") { done($0) } } == Array("state".utf8) })
        #expect(sync { done in n[2].bus.loadSession(key: "pid-1") { done($0) } } == Array("state".utf8))
        #expect(sync { done in n[2].bus.loadSession(key: "pid-2") { done($0) } } == .some(nil))

        // Analytics: one budget per user across nodes, one stream.
        #expect(sync { done in n[0].bus.takeAnalyticsBudget(user: "ann", ratePerSecond: 0.01, burst: 1) { done($0) } } == .some(nil))
        let second = sync { done in n[1].bus.takeAnalyticsBudget(user: "ann", ratePerSecond: 0.01, burst: 1) { done($0) } }
        let retryAfter: Int? = second ?? nil
        #expect((retryAfter ?? 0) > 0, "the budget is shared: \(String(describing: second))")
        n[0].bus.appendAnalytics(
            [AnalyticsEvent(user: "ann", node: "n0", room: nil, event: "click", data: JSONFragment("1"), serverTimeMilliseconds: 5)],
            maxLength: 100)
        #expect(wait(3) { sync { done in n[2].bus.recentAnalytics(count: 10) { done($0) } }?.map(\.event) == ["click"] })

        // A second live node with n0's id rewrites n0's registry key between n0's heartbeats: reported.
        let lines = Lock<[String]>([])
        let loop = try EventLoop(index: 83)
        loop.start(name: "roles-dup")
        defer { loop.stopAndWait(timeoutMilliseconds: 2000) }
        let twin = RedisClusterBus(
            loop: loop, seeds: [("127.0.0.1", cluster.ports[0])], prefix: "ct:", nodeID: "n0", heartbeatIntervalMilliseconds: 200,
            nodeTTLMilliseconds: 800, logger: { _, message, _ in lines.withLock { $0.append(message) } })
        twin.start(delegate: Recorder())
        #expect(wait(5) { lines.withLock { $0.contains { $0.hasPrefix("another live node uses this node id") } } })
        // ... and counted, under the standalone bus's metric name.
        #expect(twin.clusterMetrics.nodeIDConflicts.load() + n[0].bus.clusterMetrics.nodeIDConflicts.load() > 0)
        var w = PrometheusWriter()
        twin.writeClusterMetrics(to: &w)
        #expect(w.text.contains("switchboard_bus_node_id_conflicts_total"))
    }

    /// Analytics while no slot map is known: dropped and counted (`switchboard_bus_analytics_dropped_total`),
    /// never queued without bound.
    @Test func analyticsWhileTheBusIsDownAreCountedAsDropped() throws {
        let loop = try EventLoop(index: 82)
        loop.start(name: "roles-analytics")
        let keeper = LoopKeeper(loop)
        defer { keeper.stop() }
        let closed = try freeTCPPort()
        let bus = RedisClusterBus(loop: loop, seeds: [("127.0.0.1", closed)], prefix: "ad:", nodeID: "d", logger: { _, _, _ in })
        keeper.keep(bus)
        bus.start(delegate: Recorder())
        let event = AnalyticsEvent(user: "u", node: "d", room: nil, event: "click", data: JSONFragment("1"), serverTimeMilliseconds: 1)
        bus.appendAnalytics([event, event, event], maxLength: 10)
        #expect(wait(3) { bus.clusterMetrics.analyticsDropped.load() == 3 })
        var w = PrometheusWriter()
        bus.writeClusterMetrics(to: &w)
        #expect(w.text.contains("switchboard_bus_analytics_dropped_total 3"))
    }

    /// The node that was handed a dead node's rooms dies before clearing them (here: a heartbeat run by hand,
    /// whose caller then does nothing): when its lease ends, the next heartbeat's caller gets the rooms and
    /// clears them, so no presence outlives every cleaner (heartbeat v5's claimable clean-up).
    @Test func aCleanerThatDiesMidCleanUpLeavesNoGhostPresence() throws {
        let cluster = try RedisTestCluster(masters: 3)
        let ghost = try node(2, cluster, prefix: "gh:", loopIndex: 92)
        #expect(wait(5) { ghost.bus.state == .up })
        let rooms = ["a", "b", "c"]
        for room in rooms { ghost.bus.setPresence(room: room, localCount: 1) }
        #expect(wait(5) { rooms.allSatisfy { presence(ghost.bus, $0)?.connections == 1 } })
        ghost.loop.stopAndWait(timeoutMilliseconds: 2000)  // dies without a word
        usleep(1_200_000)  // past its TTL (0.8 s)

        // A cleaner claims n2's rooms with a 1 s lease, then dies without clearing any.
        let nodesKey = "gh:{nodes}nodes"
        let claimed = RedisTestCluster.cli(
            cluster.ports[0],
            ["-c", "EVAL", RedisScripts.heartbeat.source, "1", nodesKey, "gh:{nodes}", "cleaner", "{}", "800", "", "0", "1", "1000"])
        #expect(claimed.contains("n2") && claimed.contains("a"), "the cleaner was handed n2's rooms: \(claimed)")

        // A live node comes up: within the lease plus a few heartbeats, the rooms are handed to it and cleared.
        let survivor = try node(0, cluster, prefix: "gh:", loopIndex: 93)
        defer { survivor.loop.stopAndWait(timeoutMilliseconds: 2000) }
        #expect(wait(6) { rooms.allSatisfy { presence(survivor.bus, $0)?.connections == 0 } }, "n2's presence is gone")
        #expect(
            wait(3) {
                RedisTestCluster.cli(cluster.ports[0], ["-c", "EXISTS", "gh:{nodes}cleaning-rooms:n2"]).trimmingCharacters(in: .whitespacesAndNewlines) == "0"
            })
    }
}
