import Foundation
import Glibc
import Runtime
import SwitchboardClient

/// Some of the members: hosted on this process's loop (`LocalShard`) or by a child process of the bench
/// (`RemoteShard`), used when there are more connections than one process may hold open files (20,000
/// hard limit here). The scenario code drives both the same way; calls block the main thread, never the loop.
protocol MemberShard: AnyObject {
    /// Waits until every member is ready or failed (or `timeoutMs` passed).
    func waitReady(timeoutMs: Int) -> GroupReady
    /// Re-opens members whose connection ended, then waits as `waitReady`.
    func reopen(timeoutMs: Int) -> GroupReady
    func beginStep(base: Int)
    /// Asks for the step's result once every member has `published` messages or `drainMs` passed;
    /// `collectFinish` returns it (split so shards drain in parallel).
    func requestFinish(published: Int, drainMs: Int)
    func collectFinish() -> GroupResult
    func close()
    /// The child's pid (for CPU accounting), nil in-process.
    var pid: Int32? { get }
}

/// Members on this process's bench loop.
final class LocalShard: MemberShard {
    private let bench: ClientLoop
    private let group: MemberGroup
    private let count: Int
    private var finishRequest = (published: 0, drainMs: 0)

    init(bench: ClientLoop, config: GroupConfig) {
        self.bench = bench
        count = config.count
        group = MemberGroup(bench: bench, config: config)
        bench.run { [group] in group.open() }
    }

    var pid: Int32? { nil }

    func waitReady(timeoutMs: Int) -> GroupReady {
        let done = waitUntil(timeoutMs: timeoutMs) { bench.sync { [group] in group.openingDone } }
        var info = bench.sync { [group] in group.readyInfo }
        if !done {
            let missing = count - info.ready - info.failed
            info.failed += missing
            info.failures["open_timeout", default: 0] += missing
        }
        return info
    }

    func reopen(timeoutMs: Int) -> GroupReady {
        bench.run { [group] in group.open() }
        return waitReady(timeoutMs: timeoutMs)
    }

    func beginStep(base: Int) { bench.sync { [group] in group.beginStep(base: base) } }

    func requestFinish(published: Int, drainMs: Int) { finishRequest = (published, drainMs) }

    func collectFinish() -> GroupResult {
        let p = finishRequest.published
        _ = waitUntil(timeoutMs: finishRequest.drainMs) { bench.sync { [group] in group.allDelivered(published: p) } }
        return bench.sync { [group] in group.stepResult(published: p) }
    }

    func close() { bench.sync { [group] in group.closeAll() } }
}

/// Members in a child process: `switchboard-bench <same scenario and flags> --shard-index I --shard-count K`,
/// driven over its stdin/stdout with one-line commands (`begin`, `finish`, `reopen`, `close`) and answers
/// (`ready {json}`, `ok`, `result {json}`).
final class RemoteShard: MemberShard {
    private let process = Process()
    private let toChild = Pipe()
    private let fromChild = Pipe()
    private var buffer: [UInt8] = []
    private var finishDrainMs = 0

    init(arguments: [String]) throws {
        process.executableURL = URL(fileURLWithPath: RemoteShard.selfExecutable())
        process.arguments = arguments
        process.standardInput = toChild
        process.standardOutput = fromChild
        process.standardError = FileHandle.standardError
        try process.run()
    }

    var pid: Int32? { process.processIdentifier }

    static func selfExecutable() -> String {
        var buf = [CChar](repeating: 0, count: 4096)
        let n = readlink("/proc/self/exe", &buf, buf.count - 1)
        return n > 0 ? String(decoding: buf[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self) : CommandLine.arguments[0]
    }

    private func send(_ line: String) {
        try? toChild.fileHandleForWriting.write(contentsOf: Data((line + "\n").utf8))
    }

    /// The next line from the child, or nil after `timeoutMs` or EOF.
    private func readLine(timeoutMs: Int) -> String? {
        let fd = fromChild.fileHandleForReading.fileDescriptor
        let deadline = monotonicMilliseconds() + UInt64(timeoutMs)
        while true {
            if let nl = buffer.firstIndex(of: 0x0A) {
                let line = String(decoding: buffer[..<nl], as: UTF8.self)
                buffer.removeSubrange(...nl)
                return line
            }
            let now = monotonicMilliseconds()
            guard now < deadline else { return nil }
            var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let r = poll(&p, 1, Int32(min(deadline - now, 1000)))
            if r < 0 && errno != EINTR { return nil }
            if r <= 0 { continue }
            var chunk = [UInt8](repeating: 0, count: 65536)
            let n = read(fd, &chunk, chunk.count)
            if n <= 0 { return nil }
            buffer.append(contentsOf: chunk[0..<n])
        }
    }

    private func expect<T: Decodable>(_ tag: String, _ type: T.Type, timeoutMs: Int) -> T? {
        while let line = readLine(timeoutMs: timeoutMs) {
            guard line.hasPrefix(tag + " ") else { continue }
            return try? JSONDecoder().decode(T.self, from: Data(line.dropFirst(tag.count + 1).utf8))
        }
        return nil
    }

    func waitReady(timeoutMs: Int) -> GroupReady {
        expect("ready", GroupReady.self, timeoutMs: timeoutMs + 10_000)
            ?? GroupReady(ready: 0, failed: 0, failures: ["child_process_unresponsive": 1])
    }

    func reopen(timeoutMs: Int) -> GroupReady {
        send("reopen")
        return waitReady(timeoutMs: timeoutMs)
    }

    func beginStep(base: Int) {
        send("begin \(base)")
        _ = readLine(timeoutMs: 10_000)
    }

    func requestFinish(published: Int, drainMs: Int) {
        finishDrainMs = drainMs
        send("finish \(published) \(drainMs)")
    }

    func collectFinish() -> GroupResult {
        expect("result", GroupResult.self, timeoutMs: finishDrainMs + 30_000) ?? GroupResult()
    }

    func close() {
        send("close")
        let deadline = monotonicMilliseconds() + 5000
        while process.isRunning && monotonicMilliseconds() < deadline { usleep(10_000) }
        if process.isRunning { process.terminate() }
    }
}

/// The body of a child process: hosts its share of the members and obeys the parent's commands.
func runShardWorker(index: Int, count: Int, config: GroupConfig, openTimeoutMs: Int) -> Int32 {
    Progress.enabled = false
    let bench: ClientLoop
    do { bench = try ClientLoop() } catch { return 1 }
    bench.start(name: benchLoopThreadName)
    let shard = LocalShard(bench: bench, config: config)
    func reply(_ tag: String, _ value: some Encodable) {
        let json = (try? JSONEncoder().encode(value)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
        print("\(tag) \(json)")
        fflush(nil)
    }
    reply("ready", shard.waitReady(timeoutMs: openTimeoutMs))
    while let line = Swift.readLine() {
        let words = line.split(separator: " ")
        switch words.first {
        case "begin":
            shard.beginStep(base: Int(words.dropFirst().first ?? "0") ?? 0)
            print("ok")
            fflush(nil)
        case "finish":
            let published = Int(words.count > 1 ? words[1] : "0") ?? 0
            let drain = Int(words.count > 2 ? words[2] : "0") ?? 0
            shard.requestFinish(published: published, drainMs: drain)
            reply("result", shard.collectFinish())
        case "reopen":
            reply("ready", shard.reopen(timeoutMs: openTimeoutMs))
        case "close":
            shard.close()
            return 0
        default:
            continue
        }
    }
    shard.close()
    return 0
}

/// Splits `total` members over this process (≤ `perProcess`) or over child processes of `perProcess` each;
/// child `i` binds source address 127.0.0.(i+1) so every child has its own ephemeral-port range.
func makeShards(
    bench: ClientLoop, total: Int, perProcess: Int, scenario: String, options: Options,
    config: (Int, String?) throws -> GroupConfig
) throws -> [MemberShard] {
    if total <= perProcess {
        return [LocalShard(bench: bench, config: try config(total, nil))]
    }
    let k = (total + perProcess - 1) / perProcess
    Progress.say("\(total) connections: spawning \(k) child processes of ≤ \(perProcess) each")
    var shards: [MemberShard] = []
    for i in 0..<k {
        shards.append(try RemoteShard(arguments: [scenario] + options.raw + ["--shard-index", "\(i)", "--shard-count", "\(k)"]))
    }
    return shards
}

/// Members hosted by child `index` of `count`.
func shardShare(total: Int, index: Int, count: Int) -> Int {
    total / count + (index < total % count ? 1 : 0)
}
