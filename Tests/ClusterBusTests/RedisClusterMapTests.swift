@testable import ClusterBus
import Foundation
import Glibc
import Runtime
import Testing

/// The slot map from `CLUSTER SHARDS` and the redirects, as values and against a real three-master cluster
/// on loopback (our `RedisConnection` talks to it; keys from `RedisClusterKeys` land where the map says).
@Suite(.serialized) struct RedisClusterMapTests {
    static func node(_ id: String, _ port: Int, _ role: String, health: String = "online") -> RedisReply {
        func s(_ t: String) -> RedisReply { .string(Array(t.utf8)) }
        return .array([s("id"), s(id), s("port"), .integer(Int64(port)), s("ip"), s("127.0.0.1"), s("endpoint"), s("127.0.0.1"),
                       s("role"), s(role), s("replication-offset"), .integer(0), s("health"), s(health)])
    }

    static func shard(_ ranges: [(Int, Int)], _ nodes: [RedisReply]) -> RedisReply {
        .array([.string(Array("slots".utf8)), .array(ranges.flatMap { [.integer(Int64($0.0)), .integer(Int64($0.1))] }),
                .string(Array("nodes".utf8)), .array(nodes)])
    }

    @Test func parsesShardsPrimariesReplicasAndGaps() throws {
        let reply = RedisReply.array([
            Self.shard([(0, 5460)], [Self.node("a", 7000, "master"), Self.node("d", 7003, "replica")]),
            Self.shard([(5461, 10922)], [Self.node("b", 7001, "master", health: "fail"), Self.node("e", 7004, "replica")]),
            Self.shard([(10923, 16000), (16002, 16383)], [Self.node("c", 7002, "master")]),
        ])
        let map = try RedisClusterMap(shardsReply: reply)
        #expect(map.shards.count == 3)
        #expect(map.primary(ofSlot: 0)?.port == 7000 && map.primary(ofSlot: 5460)?.port == 7000)
        #expect(map.shard(ofSlot: 0)?.replicas.map(\.port) == [7003])
        #expect(map.primary(ofSlot: 6000) == nil, "a failed primary serves nothing until its replica is promoted")
        #expect(map.uncoveredSlots == [5461...10922, 16001...16001])
        var moved = map
        moved.move(slot: 16001, to: "127.0.0.1", port: 7002)
        moved.move(slot: 6000, to: "127.0.0.1", port: 7004)
        #expect(moved.primary(ofSlot: 16001)?.port == 7002 && moved.primary(ofSlot: 6000)?.port == 7004)
    }

    @Test func refusesWhatIsNotASlotMap() {
        let bad: [RedisReply] = [
            .error("ERR This instance has cluster support disabled"), .status("OK"), .array([.integer(1)]),
            .array([.array([.string(Array("slots".utf8)), .array([.integer(0)]), .string(Array("nodes".utf8)), .array([])])]),
            .array([Self.shard([(10, 5)], [Self.node("a", 7000, "master")])]),
            .array([Self.shard([(0, 16384)], [Self.node("a", 7000, "master")])]),
            .array([Self.shard([(0, 1)], [.array([.string(Array("id".utf8)), .string(Array("x".utf8))])])]),
        ]
        for r in bad { #expect(throws: RedisClusterError.self, "\(r)") { try RedisClusterMap(shardsReply: r) } }
    }

    @Test func redirects() {
        #expect(RedisRedirect(error: "MOVED 3999 127.0.0.1:6381") == .moved(slot: 3999, host: "127.0.0.1", port: 6381))
        #expect(RedisRedirect(error: "ASK 3999 [::1]:6381") == .ask(slot: 3999, host: "::1", port: 6381))
        #expect(RedisRedirect(error: "MOVED 3999 :6381") == .moved(slot: 3999, host: "", port: 6381), "Redis 7: same host as the answering node")
        for bad in ["MOVED 16384 h:1", "MOVED x h:1", "MOVED 1 h", "MOVED 1 h:0", "ERR wrong", "ASK 1 h:1 extra", "CLUSTERDOWN The cluster is down"] {
            #expect(RedisRedirect(error: bad) == nil, "\(bad)")
        }
    }

    // MARK: - A real cluster

    @Test func aRealThreeMasterClusterRoutesRoomKeysToTheirShards() throws {
        let cluster = try RedisTestCluster(masters: 3)
        let loop = try EventLoop(index: 97)
        loop.start(name: "cluster-map-test")
        defer { loop.stopAndWait(timeoutMilliseconds: 2000) }
        let context = SocketContext(loop: loop)
        let client = SyncRedis(loop: loop, context: context)

        let map = try RedisClusterMap(shardsReply: try #require(client.command(port: cluster.ports[0], ["CLUSTER", "SHARDS"])))
        #expect(map.shards.count == 3 && map.uncoveredSlots.isEmpty)
        #expect(Set(map.shards.compactMap { $0.primary?.port }) == Set(cluster.ports))

        // A seed not in cluster mode is a clear error.
        let plainPort = try freeTCPPort()
        let plain = try startRedis(port: plainPort)
        defer { kill(plain.processIdentifier, SIGKILL); plain.waitUntilExit() }
        usleep(200_000)
        let refused = try #require(client.command(port: plainPort, ["CLUSTER", "SHARDS"]))
        #expect(throws: RedisClusterError.self) { try RedisClusterMap(shardsReply: refused) }

        let keys = RedisClusterKeys(prefix: "sb:", nodeID: "n1")
        var shardsUsed = Set<Int>()
        for i in 0..<30 {
            let room = i % 5 == 0 ? "r{\(i)}" : "room-\(i)"
            let slot = keys.slot(ofRoom: room)
            let owner = try #require(map.primary(ofSlot: slot))
            shardsUsed.insert(owner.port)
            #expect(client.command(port: owner.port, ["CLUSTER", "KEYSLOT", keys.history(room)]) == .integer(Int64(slot)))
            // One multi-key command over the room's keys: no CROSSSLOT on the owner.
            #expect(client.command(port: owner.port, ["MSET", keys.meta(room), "1", keys.presence(room), "2", keys.idempotency(room, key: "k")]
                                   + ["3"]) == .status("OK"))
            let other = try #require(cluster.ports.first { $0 != owner.port })
            let answer = client.command(port: other, ["GET", keys.meta(room)])
            #expect(answer?.errorMessage.flatMap(RedisRedirect.init(error:)) == .moved(slot: slot, host: "127.0.0.1", port: owner.port))
        }
        #expect(shardsUsed.count == 3, "rooms spread over all shards")
    }
}

/// Blocking helper over our `RedisConnection` for tests: one connection per command, answered on `loop`.
final class SyncRedis: @unchecked Sendable {
    let loop: EventLoop
    let context: SocketContext
    init(loop: EventLoop, context: SocketContext) {
        self.loop = loop
        self.context = context
    }

    func command(port: Int, _ args: [String]) -> RedisReply? {
        let box = Lock<RedisReply?>(nil)
        let done = DispatchSemaphore(value: 0)
        loop.execute { [self] in
            guard case .success(let c) = RedisConnection.open(host: "127.0.0.1", port: port, context: context, role: "test") else {
                done.signal()
                return
            }
            let sent = c.send(RedisCommand(args)) { reply in
                box.withLock { $0 = reply }
                c.close()
                done.signal()
            }
            if !sent { done.signal() }
        }
        guard done.wait(timeout: .now() + 5) == .success else { return nil }
        return box.withLock { $0 }
    }
}

/// `masters` redis-servers in cluster mode on loopback (plus `replicasPerMaster` replicas each), joined with
/// `redis-cli --cluster create`, killed in deinit. Ports are picked with their cluster-bus port (+10000) free too.
final class RedisTestCluster {
    let ports: [Int]
    let dir: URL
    private var processes: [Process] = []

    /// `password`: every node requires it (`requirepass`, and `masterauth` for the replicas).
    let password: String?

    init(masters: Int, replicasPerMaster: Int = 0, password: String? = nil) throws {
        self.password = password
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("sb-cluster-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        var ports: [Int] = []
        while ports.count < masters * (1 + replicasPerMaster) {
            let p = Int.random(in: 20000..<30000)
            if !ports.contains(p), Self.isFree(p), Self.isFree(p + 10000) { ports.append(p) }
        }
        self.ports = ports
        for p in ports {
            let proc = Process()
            proc.executableURL = URL(fileURLWithPath: "/usr/bin/redis-server")
            proc.currentDirectoryURL = dir
            proc.arguments = ["--port", "\(p)", "--cluster-enabled", "yes", "--cluster-config-file", "nodes-\(p).conf",
                              "--cluster-node-timeout", "1000", "--save", "", "--repl-diskless-sync-delay", "0",
                              "--cluster-replica-validity-factor", "0", "--appendonly", "no", "--bind", "127.0.0.1",
                              "--daemonize", "no", "--loglevel", "warning", "--protected-mode", "no"]
                + (password.map { ["--requirepass", $0, "--masterauth", $0] } ?? [])
            proc.standardOutput = FileHandle.nullDevice
            proc.standardError = FileHandle.nullDevice
            try proc.run()
            processes.append(proc)
        }
        usleep(300_000)
        let create = Process()
        create.executableURL = URL(fileURLWithPath: "/usr/bin/redis-cli")
        create.arguments = (password.map { ["-a", $0, "--no-auth-warning"] } ?? []) + ["--cluster", "create"] + ports.map { "127.0.0.1:\($0)" } + ["--cluster-replicas", "\(replicasPerMaster)", "--cluster-yes"]
        create.standardOutput = FileHandle.nullDevice
        create.standardError = FileHandle.nullDevice
        try create.run()
        create.waitUntilExit()
        guard create.terminationStatus == 0 else { throw ClusterSetupError("redis-cli --cluster create exited \(create.terminationStatus)") }
        // Every node must agree the cluster is up (gossip takes a moment after create).
        let deadline = Date().addingTimeInterval(10)
        while Date() < deadline {
            // Replicas must have synced (health online, not loading) before a failover can promote them.
            if ports.allSatisfy({ Self.cli($0, ["CLUSTER", "INFO"], password: password).contains("cluster_state:ok") }),
               Self.cli(ports[0], ["CLUSTER", "SHARDS"], password: password).components(separatedBy: "\nonline").count - 1 == ports.count { return }
            usleep(100_000)
        }
        throw ClusterSetupError("the cluster did not reach cluster_state:ok")
    }

    /// SIGKILL the server on `port` (a crash: its replica takes over after the node timeout).
    func kill(port: Int) {
        guard let i = ports.firstIndex(of: port) else { return }
        Glibc.kill(processes[i].processIdentifier, SIGKILL)
        processes[i].waitUntilExit()
    }

    deinit {
        for p in processes where p.isRunning {
            Glibc.kill(p.processIdentifier, SIGKILL)
            p.waitUntilExit()
        }
        try? FileManager.default.removeItem(at: dir)
    }

    static func isFree(_ port: Int) -> Bool {
        guard let fd = try? Socket.listen(host: "127.0.0.1", port: port, reusePort: false) else { return false }
        close(fd)
        return true
    }

    static func info(_ port: Int) -> String { cli(port, ["CLUSTER", "INFO"]) }

    static func cli(_ port: Int, _ args: [String], password: String? = nil) -> String {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/redis-cli")
        p.arguments = ["-p", "\(port)"] + (password.map { ["-a", $0, "--no-auth-warning"] } ?? []) + args
        let out = Pipe()
        p.standardOutput = out
        p.standardError = FileHandle.nullDevice
        guard (try? p.run()) != nil else { return "" }
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return String(decoding: data, as: UTF8.self)
    }
}

struct ClusterSetupError: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}
