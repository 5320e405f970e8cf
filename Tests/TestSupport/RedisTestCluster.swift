import Foundation
import Glibc
import Runtime

/// Shared by ClusterBusTests and GatewayTests (target TestSupport).
/// `masters` redis-servers in cluster mode on loopback (plus `replicasPerMaster` replicas each), joined with
/// `redis-cli --cluster create`, killed in deinit. Ports are picked with their cluster-bus port (+10000) free too.
public final class RedisTestCluster {
    public let ports: [Int]
    public let dir: URL
    private var processes: [Process] = []

    /// `password`: every node requires it (`requirepass`, and `masterauth` for the replicas).
    public let password: String?

    public init(masters: Int, replicasPerMaster: Int = 0, password: String? = nil) throws {
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
            proc.arguments =
                [
                    "--port", "\(p)", "--cluster-enabled", "yes", "--cluster-config-file", "nodes-\(p).conf",
                    "--cluster-node-timeout", "1000", "--save", "", "--repl-diskless-sync-delay", "0",
                    "--cluster-replica-validity-factor", "0", "--appendonly", "no", "--bind", "127.0.0.1",
                    "--daemonize", "no", "--loglevel", "warning", "--protected-mode", "no"
                ]
                + (password.map { ["--requirepass", $0, "--masterauth", $0] } ?? [])
            proc.standardOutput = FileHandle.nullDevice
            proc.standardError = FileHandle.nullDevice
            try proc.run()
            processes.append(proc)
        }
        usleep(300_000)
        let create = Process()
        create.executableURL = URL(fileURLWithPath: "/usr/bin/redis-cli")
        create.arguments =
            (password.map { ["-a", $0, "--no-auth-warning"] } ?? []) + ["--cluster", "create"] + ports.map { "127.0.0.1:\($0)" } + [
                "--cluster-replicas", "\(replicasPerMaster)", "--cluster-yes"
            ]
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
                Self.cli(ports[0], ["CLUSTER", "SHARDS"], password: password).components(separatedBy: "\nonline").count - 1 == ports.count
            {
                return
            }
            usleep(100_000)
        }
        throw ClusterSetupError("the cluster did not reach cluster_state:ok")
    }

    /// SIGKILL the server on `port` (a crash: its replica takes over after the node timeout).
    public func kill(port: Int) {
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

    public static func isFree(_ port: Int) -> Bool {
        guard let fd = try? Socket.listen(host: "127.0.0.1", port: port, reusePort: false) else { return false }
        close(fd)
        return true
    }

    public static func info(_ port: Int) -> String { cli(port, ["CLUSTER", "INFO"]) }

    public static func cli(_ port: Int, _ args: [String], password: String? = nil) -> String {
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

public struct ClusterSetupError: Error, CustomStringConvertible {
    public let description: String
    public init(_ d: String) { description = d }
}
