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
    /// `redis-cli` flags for a TLS cluster (`--tls --cacert …`), empty for plain TCP.
    public let cliTLS: [String]

    /// PEM files for a TLS-only cluster: every node serves TLS on its port (`--port 0 --tls-port`), the
    /// cluster bus and replication are TLS too (`--tls-cluster yes`, `--tls-replication yes`).
    public struct TLSFiles {
        public var certificate: String
        public var key: String
        public var ca: String
        public init(certificate: String, key: String, ca: String) {
            self.certificate = certificate
            self.key = key
            self.ca = ca
        }
    }

    /// `extraArguments` are appended to every node's `redis-server` command line (e.g.
    /// `--cluster-require-full-coverage no`).
    public init(masters: Int, replicasPerMaster: Int = 0, password: String? = nil, tls: TLSFiles? = nil, extraArguments: [String] = []) throws {
        self.password = password
        self.cliTLS = tls.map { ["--tls", "--cacert", $0.ca] } ?? []
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
            let listen =
                tls.map {
                    [
                        "--port", "0", "--tls-port", "\(p)", "--tls-cluster", "yes", "--tls-replication", "yes", "--tls-cert-file", $0.certificate,
                        "--tls-key-file", $0.key, "--tls-ca-cert-file", $0.ca, "--tls-auth-clients", "no"
                    ]
                } ?? ["--port", "\(p)"]
            proc.arguments =
                listen + [
                    "--cluster-enabled", "yes", "--cluster-config-file", "nodes-\(p).conf",
                    "--cluster-node-timeout", "1000", "--save", "", "--repl-diskless-sync-delay", "0",
                    "--cluster-replica-validity-factor", "0", "--appendonly", "no", "--bind", "127.0.0.1",
                    "--daemonize", "no", "--loglevel", "warning", "--protected-mode", "no"
                ]
                + (password.map { ["--requirepass", $0, "--masterauth", $0] } ?? []) + extraArguments
            proc.standardOutput = FileHandle.nullDevice
            proc.standardError = FileHandle.nullDevice
            try proc.run()
            processes.append(proc)
        }
        usleep(300_000)
        let create = Process()
        create.executableURL = URL(fileURLWithPath: "/usr/bin/redis-cli")
        create.arguments =
            cliTLS + (password.map { ["-a", $0, "--no-auth-warning"] } ?? []) + ["--cluster", "create"] + ports.map { "127.0.0.1:\($0)" } + [
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
            if ports.allSatisfy({ Self.cli($0, ["CLUSTER", "INFO"], password: password, tls: cliTLS).contains("cluster_state:ok") }),
                Self.cli(ports[0], ["CLUSTER", "SHARDS"], password: password, tls: cliTLS).components(separatedBy: "\nonline").count - 1 == ports.count
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

    /// SIGSTOP the server on `port`: a stall (paused VM, black-holed network), not a death; the kernel
    /// still holds its connections open. Undone by ``resume(port:)`` (deinit kills it either way).
    public func pause(port: Int) {
        guard let i = ports.firstIndex(of: port) else { return }
        Glibc.kill(processes[i].processIdentifier, SIGSTOP)
    }

    /// SIGCONT the server on `port` after ``pause(port:)``.
    public func resume(port: Int) {
        guard let i = ports.firstIndex(of: port) else { return }
        Glibc.kill(processes[i].processIdentifier, SIGCONT)
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

    /// `redis-cli` against this cluster's node on `port` (with its password and TLS flags).
    public func cli(_ port: Int, _ args: [String]) -> String { Self.cli(port, args, password: password, tls: cliTLS) }

    public static func cli(_ port: Int, _ args: [String], password: String? = nil, tls: [String] = []) -> String {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/redis-cli")
        p.arguments = tls + ["-p", "\(port)"] + (password.map { ["-a", $0, "--no-auth-warning"] } ?? []) + args
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
