import Foundation
import Glibc
import Runtime
import SwitchboardClient

// switchboard-bench: the load generator of docs/benchmarks.md. `switchboard-bench --help`.
let scenarios = ["idle", "handshakes", "fanout", "crossnode"]
let arguments = Array(CommandLine.arguments.dropFirst())
if arguments.isEmpty || ["--help", "-h", "help"].contains(arguments[0]) {
    print(Options.helpText, terminator: "")
    exit(arguments.isEmpty ? 2 : 0)
}
let scenario = arguments[0]
guard scenarios.contains(scenario) else {
    FileHandle.standardError.write(Data("switchboard-bench: unknown scenario '\(scenario)' (one of \(scenarios.joined(separator: ", ")))\n".utf8))
    exit(2)
}
let options: Options
let context: Context
do {
    options = try Options(Array(arguments.dropFirst()))
    if options.has("help") {
        print(Options.helpText, terminator: "")
        exit(0)
    }
    context = try Context(scenario: scenario, options: options)
} catch {
    FileHandle.standardError.write(Data("switchboard-bench: \(error)\n".utf8))
    exit(2)
}
signal(SIGPIPE, SIG_IGN)
let fileLimit = raiseOpenFileLimit()
if context.perProcess + 64 > fileLimit {
    FileHandle.standardError.write(Data("switchboard-bench: --per-process \(context.perProcess) exceeds the open-file limit \(fileLimit)\n".utf8))
    exit(2)
}
if options.has("quiet") { Progress.enabled = false }

// A child process hosting part of the members (see Shards.swift).
if let index = try? options.optionalInt("shard-index"), let count = try? options.optionalInt("shard-count", 1...1000) {
    do {
        let share = shardShare(total: try context.memberCount(), index: index, count: count)
        let config = try context.memberConfig(count: share, sourceHost: "127.0.0.\(index + 1)")
        exit(runShardWorker(index: index, count: count, config: config, openTimeoutMs: context.openTimeoutMs))
    } catch {
        FileHandle.standardError.write(Data("switchboard-bench child \(index): \(error)\n".utf8))
        exit(1)
    }
}

do {
    let bench = try ClientLoop()
    bench.start(name: benchLoopThreadName)
    let report: Report
    switch scenario {
    case "idle": report = try runIdle(context, bench)
    case "handshakes": report = try runHandshakes(context, bench)
    default: report = try runFanout(context, bench)
    }
    report.emit(jsonOnly: context.jsonOnly)
    bench.stop()
    exit(0)
} catch {
    FileHandle.standardError.write(Data("switchboard-bench: \(error)\n".utf8))
    exit(1)
}
