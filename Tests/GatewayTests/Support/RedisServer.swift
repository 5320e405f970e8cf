import Foundation
import Glibc

/// Debian's `redis-server` as a child process for one test: loopback only, a free port, no persistence
/// (`--save '' --appendonly no`), killed in deinit. `kill()` + `start()` restart it on the same port
/// (an outage with history loss, as a Redis restart without persistence has).
final class RedisServer: @unchecked Sendable {
    let port: Int
    private(set) var process: Process?
    let logURL: URL

    static var binary: String { ProcessInfo.processInfo.environment["REDIS_SERVER"] ?? "/usr/bin/redis-server" }

    init() throws {
        port = try freePort()
        logURL = FileManager.default.temporaryDirectory.appendingPathComponent("redis-test-\(port).log")
        try start()
    }

    /// `redis://127.0.0.1:PORT/0`.
    var url: String { "redis://127.0.0.1:\(port)/0" }

    /// Starts the server and waits (5 s at most) until it answers PING.
    func start() throws {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: RedisServer.binary)
        p.arguments = [
            "--port", "\(port)", "--save", "", "--appendonly", "no", "--bind", "127.0.0.1", "--daemonize", "no",
            "--loglevel", "warning", "--protected-mode", "no"
        ]
        _ = FileManager.default.createFile(atPath: logURL.path, contents: nil)
        let log = try FileHandle(forWritingTo: logURL)
        log.seekToEndOfFile()
        p.standardOutput = log
        p.standardError = log
        try p.run()
        process = p
        let deadline = Date().addingTimeInterval(5)
        while Date() < deadline {
            if let r = try? command(["PING"]), r == .status("PONG") { return }
            usleep(20_000)
        }
        throw TestFailure("redis-server did not answer PING on \(port)")
    }

    /// SIGKILL (no shutdown, no save) and wait for the exit.
    func kill() {
        guard let p = process, p.isRunning else { return }
        Glibc.kill(p.processIdentifier, SIGKILL)
        p.waitUntilExit()
        process = nil
    }

    /// One command on a fresh connection; the decoded reply (throws on I/O failure or timeout).
    @discardableResult
    func command(_ args: [String], timeout: TimeInterval = 3) throws -> RESP {
        let s = try RawSocket(port: port)
        try s.send(RESP.encode(args))
        var parser = RESPParser()
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            if let v = try parser.parse(&s.buffer) { return v }
            guard Date() < deadline, try s.fill(timeout: deadline.timeIntervalSinceNow) else { throw TestFailure("redis: no reply to \(args.first ?? "")") }
        }
    }

    /// The client id of the connection named `name` (`CLIENT SETNAME`), from `CLIENT LIST`.
    func clientID(named name: String) throws -> String? {
        try clientFields(named: name)?["id"]
    }

    /// The `CLIENT LIST` fields of the connection named `name`.
    func clientFields(named name: String) throws -> [String: String]? {
        guard case .bulk(let b) = try command(["CLIENT", "LIST"]) else { return nil }
        for line in String(decoding: b, as: UTF8.self).split(separator: "\n") {
            var fields: [String: String] = [:]
            for kv in line.split(separator: " ") {
                if let eq = kv.firstIndex(of: "=") { fields[String(kv[..<eq])] = String(kv[kv.index(after: eq)...]) }
            }
            if fields["name"] == name { return fields }
        }
        return nil
    }

    deinit {
        kill()
        try? FileManager.default.removeItem(at: logURL)
    }
}

/// A RESP2 value as the test client sees it.
enum RESP: Equatable {
    case status(String)
    case error(String)
    case integer(Int)
    case bulk([UInt8])
    case null
    case array([RESP])

    static func encode(_ args: [String]) -> [UInt8] {
        var out = Array("*\(args.count)\r\n".utf8)
        for a in args {
            out += Array("$\(a.utf8.count)\r\n".utf8) + Array(a.utf8) + [13, 10]
        }
        return out
    }

    var text: String? {
        switch self {
        case .bulk(let b): return String(decoding: b, as: UTF8.self)
        case .status(let s): return s
        default: return nil
        }
    }

    var int: Int? {
        switch self {
        case .integer(let i): return i
        case .bulk(let b): return Int(String(decoding: b, as: UTF8.self))
        default: return nil
        }
    }

    var array: [RESP]? { if case .array(let a) = self { return a } else { return nil } }
}

/// Incremental RESP2 parser over a byte buffer (consumes what it parsed).
struct RESPParser {
    mutating func parse(_ buffer: inout [UInt8]) throws -> RESP? {
        var i = 0
        guard let v = try value(buffer, &i) else { return nil }
        buffer.removeFirst(i)
        return v
    }

    private func line(_ b: [UInt8], _ i: inout Int) -> String? {
        var j = i
        while j + 1 < b.count {
            if b[j] == 13 && b[j + 1] == 10 {
                let s = String(decoding: b[i..<j], as: UTF8.self)
                i = j + 2
                return s
            }
            j += 1
        }
        return nil
    }

    private func value(_ b: [UInt8], _ i: inout Int) throws -> RESP? {
        guard i < b.count else { return nil }
        let kind = b[i]
        var j = i + 1
        guard let head = line(b, &j) else { return nil }
        switch kind {
        case UInt8(ascii: "+"): i = j; return .status(head)
        case UInt8(ascii: "-"): i = j; return .error(head)
        case UInt8(ascii: ":"): i = j; return .integer(Int(head) ?? 0)
        case UInt8(ascii: "$"):
            guard let n = Int(head) else { throw TestFailure("bad RESP length") }
            if n < 0 { i = j; return .null }
            guard j + n + 2 <= b.count else { return nil }
            let v = RESP.bulk(Array(b[j..<(j + n)]))
            i = j + n + 2
            return v
        case UInt8(ascii: "*"):
            guard let n = Int(head) else { throw TestFailure("bad RESP count") }
            if n < 0 { i = j; return .null }
            var items: [RESP] = []
            for _ in 0..<n {
                guard let v = try value(b, &j) else { return nil }
                items.append(v)
            }
            i = j
            return .array(items)
        default:
            throw TestFailure("bad RESP type byte \(kind)")
        }
    }
}
