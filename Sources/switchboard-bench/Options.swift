import Foundation
import Runtime

/// Command-line flags of one bench run: `--name value` or `--name=value`, plus boolean switches.
///
/// Durations take `ms`, `s`, `m` suffixes (a bare number is seconds); sizes take `B`, `KiB`, `MiB`
/// (a bare number is bytes). Unknown flags are an error so a typo never silently runs the wrong benchmark.
struct Options: Sendable {
    struct Invalid: Error, CustomStringConvertible { let description: String }

    /// Every flag the tool knows: name → (takes a value, help line). The order is the `--help` order.
    static let known: [(name: String, value: String?, help: String)] = [
        ("host", "ADDR", "gateway address (default 127.0.0.1; loopback only)"),
        ("port", "P", "gateway WebSocket port (default 8080)"),
        ("path", "PATH", "upgrade path (default /ws; /echo for handshakes against --echo-path)"),
        ("gateway-pid", "PID", "gateway process: RSS (idle) and CPU use (every scenario) from /proc/PID"),
        ("connections", "N", "idle: connections to open (default 10000)"),
        ("hold", "DUR", "idle: how long to hold the connections open (default 10s)"),
        ("duration", "DUR", "handshakes/fanout/crossnode: measured run time (default 5s / 10s)"),
        ("concurrency", "N", "handshakes: handshakes in flight (default 256)"),
        ("count", "N", "handshakes: stop after N handshakes (the rate is then over the time they took)"),
        ("join-frame", "TEXT", "handshakes --until joined: the text frame sent after the 101 instead of Switchboard's join (another server's protocol)"),
        (
            "until", "upgrade|hello|joined",
            "handshakes: done at the 101 (default), the first message (hello), or the answer to a join of --room sent after the 101"
        ),
        ("connect-concurrency", "N", "connects+upgrades in flight while opening members/idle connections (default 256)"),
        ("members", "N", "fanout/crossnode: members of the room (default 1000 / 10)"),
        ("room", "NAME", "fanout/crossnode: room name (default bench)"),
        ("window", "N", "fanout: publishes kept un-acked (default 32; ignored with --rate)"),
        ("rate", "R|max", "fanout/crossnode: paced publishes per second instead of the window; max = search the highest sustained rate"),
        ("size", "BYTES", "fanout/crossnode: bytes of the published data object, padding included (default 64)"),
        ("publish-port", "P", "crossnode: port of the node the publisher uses (default --port)"),
        ("member-port", "P", "crossnode: port of the node the members use (default --port)"),
        ("drain-timeout", "DUR", "fanout/crossnode: wait for late deliveries after publishing stops (default 5s)"),
        ("step-duration", "DUR", "--rate max: duration of each search step (default 3s)"),
        ("max-p99", "DUR", "--rate max: a step counts as sustained only with latency p99 at or below this (default 50ms)"),
        ("max-inflight", "N", "rate mode: most un-acked publishes before the publisher falls behind (default 100000)"),
        ("open-timeout", "DUR", "time allowed to open/join all connections (default 60s)"),
        ("connect-timeout", "DUR", "one connect+upgrade (default 5s)"),
        ("per-process", "N", "connections per bench process before children are spawned (default 19000)"),
        ("tls", nil, "wss://: TLS on every connection (a full handshake each, certificate not checked: loopback test certificates)"),
        ("tls-server-name", "NAME", "with --tls: SNI name to send (default none, as for an IP address)"),
        (
            "protocol", "switchboard|nchan",
            "fanout/crossnode: the server's protocol (default switchboard); nchan: members subscribe by URL (--path /sub/<room>, no join) and get the bare data, the publisher POSTs to --publish-path"
        ),
        ("publish-path", "PATH", "--protocol nchan: the publisher's HTTP path (default /pub/<room>)"),
        ("expect-hello", "yes|no", "wait for the gateway's hello before counting a connection open (default: yes for /ws)"),
        ("json", nil, "print only the one-line JSON summary"),
        ("quiet", nil, "no progress lines on stderr"),
        ("help", nil, "this text"),
        // Internal: a child process hosting part of the connections (see Shards.swift).
        ("shard-index", "I", "(internal) index of this child process"),
        ("shard-count", "K", "(internal) number of child processes")
    ]

    private(set) var values: [String: String] = [:]
    private(set) var switches: Set<String> = []
    /// The arguments as given (children get them back with shard flags appended).
    let raw: [String]

    init(_ arguments: [String]) throws(Invalid) {
        raw = arguments
        var i = 0
        while i < arguments.count {
            let arg = arguments[i]
            guard arg.hasPrefix("--") else { throw Invalid(description: "unexpected argument '\(arg)' (see --help)") }
            var name = String(arg.dropFirst(2))
            var value: String?
            if let eq = name.firstIndex(of: "=") {
                value = String(name[name.index(after: eq)...])
                name = String(name[..<eq])
            }
            guard let spec = Options.known.first(where: { $0.name == name }) else {
                throw Invalid(description: "unknown flag --\(name) (see --help)")
            }
            if spec.value == nil {
                guard value == nil else { throw Invalid(description: "--\(name) takes no value") }
                switches.insert(name)
            } else {
                if value == nil {
                    i += 1
                    guard i < arguments.count else { throw Invalid(description: "--\(name) needs a value") }
                    value = arguments[i]
                }
                values[name] = value!
            }
            i += 1
        }
    }

    func has(_ name: String) -> Bool { switches.contains(name) || values[name] != nil }

    func string(_ name: String, _ fallback: String) -> String { values[name] ?? fallback }

    func int(_ name: String, _ fallback: Int, _ range: ClosedRange<Int> = 0...Int.max) throws(Invalid) -> Int {
        guard let v = values[name] else { return fallback }
        guard let n = Int(v.replacingOccurrences(of: "_", with: "")), range.contains(n) else {
            throw Invalid(description: "--\(name): expected an integer in \(range.lowerBound)...\(range.upperBound), got '\(v)'")
        }
        return n
    }

    func optionalInt(_ name: String, _ range: ClosedRange<Int> = 0...Int.max) throws(Invalid) -> Int? {
        values[name] == nil ? nil : try int(name, 0, range)
    }

    /// Milliseconds.
    func duration(_ name: String, _ fallbackMs: Int) throws(Invalid) -> Int {
        guard let v = values[name] else { return fallbackMs }
        guard let ms = Options.parseDuration(v), ms >= 0 else {
            throw Invalid(description: "--\(name): expected a duration like 500ms, 10s or 2m, got '\(v)'")
        }
        return ms
    }

    func size(_ name: String, _ fallback: Int) throws(Invalid) -> Int {
        guard let v = values[name] else { return fallback }
        let units: [(String, Int)] = [("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10), ("B", 1)]
        for (suffix, mult) in units where v.hasSuffix(suffix) {
            if let n = Int(v.dropLast(suffix.count)), n >= 0 { return n * mult }
        }
        if let n = Int(v), n >= 0 { return n }
        throw Invalid(description: "--\(name): expected a size like 64, 4KiB or 1MiB, got '\(v)'")
    }

    static func parseDuration(_ v: String) -> Int? {
        let units: [(String, Double)] = [("ms", 1), ("s", 1000), ("m", 60_000), ("h", 3_600_000)]
        for (suffix, mult) in units where v.hasSuffix(suffix) {
            if let n = Double(v.dropLast(suffix.count)) { return Int(n * mult) }
        }
        return Double(v).map { Int($0 * 1000) }
    }

    static let helpText: String = {
        var s = """
            switchboard-bench: load generator for the Switchboard gateway (loopback only).

            usage: switchboard-bench <scenario> [flags]

            scenarios:
              idle        open --connections WebSocket connections, report the gateway's RSS per connection
                          (needs --gateway-pid), then hold them idle for --hold and report the gateway's CPU use
              handshakes  connect, upgrade, check 101 + Sec-WebSocket-Accept, reset; repeat for --duration with
                          --concurrency in flight; report handshakes/s and failures
              fanout      --members join --room; one publisher publishes with at most --window un-acked (or paced at
                          --rate); report delivered messages/s, loss, duplicates, order and latency p50/p99/max
              crossnode   fanout with the publisher on --publish-port and the members on --member-port;
                          (two nodes on the cluster bus); --rate max searches the highest sustained rate without loss

            flags:

            """
        for f in known where !f.help.hasPrefix("(internal)") {
            let left = "  --\(f.name)" + (f.value.map { " \($0)" } ?? "")
            s += left.padding(toLength: max(left.count + 2, 30), withPad: " ", startingAt: 0) + f.help + "\n"
        }
        s += """

            Output: human-readable lines, then one line of JSON (`--json`: only the JSON line).
            Exit status: 0 on a completed run (check the figures), 1 when the run could not be done, 2 on bad flags.

            """
        return s
    }()
}
