import ClusterBus
import Foundation
import Glibc
import Protocol
import Runtime

/// Log severity, lowest first.
public enum LogLevel: String, Sendable, Comparable {
    case debug, info, warn, error
    // A switch, not a dictionary literal: every level check on the handshake path built and hashed one
    // (~2.5 % of the gateway's CPU per handshake, issue 17).
    private var rank: Int {
        switch self {
        case .debug: 0
        case .info: 1
        case .warn: 2
        case .error: 3
        }
    }
    public static func < (a: LogLevel, b: LogLevel) -> Bool { a.rank < b.rank }
}

/// A JSON value for a log field.
public enum LogValue: Sendable, ExpressibleByStringLiteral, ExpressibleByIntegerLiteral {
    case string(String)
    case int(Int)
    case double(Double)
    case bool(Bool)
    public init(stringLiteral v: String) { self = .string(v) }
    public init(integerLiteral v: Int) { self = .int(v) }
}

/// JSON-lines logger on stderr: `{"ts":"…","level":"info","msg":"…","node":"…", …fields}`.
///
/// One `write(2)` per line, so lines from different loops never interleave. Thread-safe.
/// Repeats of a noisy message (same `msg`) are limited per second by `rateLimited(_:)`.
public final class Logger: Sendable {
    /// Lines below this level are dropped.
    public let level: LogLevel
    private let node: String
    private let limiter = Lock<[String: (second: Int, count: Int)]>([:])

    public init(level: LogLevel, node: String) {
        self.level = level
        self.node = node
    }

    /// True when lines at `lvl` are written: check it before building costly fields on hot paths.
    @inline(__always)
    public func isEnabled(_ lvl: LogLevel) -> Bool { lvl >= level }

    // Fields are autoclosures: nothing is built (dictionary, peer lookup) when the level is off.
    public func debug(_ msg: String, _ fields: @autoclosure () -> KeyValuePairs<String, LogValue> = [:]) {
        if isEnabled(.debug) { log(.debug, msg, fields()) }
    }
    public func info(_ msg: String, _ fields: @autoclosure () -> KeyValuePairs<String, LogValue> = [:]) {
        if isEnabled(.info) { log(.info, msg, fields()) }
    }
    public func warn(_ msg: String, _ fields: KeyValuePairs<String, LogValue> = [:]) { log(.warn, msg, fields) }
    public func error(_ msg: String, _ fields: KeyValuePairs<String, LogValue> = [:]) { log(.error, msg, fields) }

    /// Logs at most `perSecond` lines with this `msg` each second; the first line after a suppressed
    /// stretch carries `suppressed`.
    public func rateLimited(_ lvl: LogLevel, _ msg: String, perSecond: Int = 10, _ fieldsBuilder: @autoclosure () -> KeyValuePairs<String, LogValue> = [:]) {
        guard lvl >= level else { return }
        let sec = Int(monotonicMilliseconds() / 1000)
        let (allowed, suppressed) = limiter.withLock { m -> (Bool, Int) in
            var e = m[msg] ?? (sec, 0)
            var suppressed = 0
            if e.second != sec {
                suppressed = max(0, e.count - perSecond)
                e = (sec, 0)
            }
            e.count += 1
            m[msg] = e
            return (e.count <= perSecond, suppressed)
        }
        guard allowed else { return }
        var line = header(lvl, msg)
        for (k, v) in fieldsBuilder() { append(&line, k, v) }
        if suppressed > 0 { append(&line, "suppressed", .int(suppressed)) }
        emit(&line)
    }

    public func log(_ lvl: LogLevel, _ msg: String, _ fields: KeyValuePairs<String, LogValue>) {
        guard lvl >= level else { return }
        var line = header(lvl, msg)
        for (k, v) in fields { append(&line, k, v) }
        emit(&line)
    }

    /// Logs with fields built at run time (e.g. the effective config).
    public func log(_ lvl: LogLevel, _ msg: String, pairs: [(String, LogValue)]) {
        guard lvl >= level else { return }
        var line = header(lvl, msg)
        for (k, v) in pairs { append(&line, k, v) }
        emit(&line)
    }

    private func header(_ lvl: LogLevel, _ msg: String) -> String {
        var line = "{\"ts\":\"\(Logger.timestamp())\",\"level\":\"\(lvl.rawValue)\",\"msg\":"
        Logger.appendJSONString(&line, msg)
        line += ",\"node\":"
        Logger.appendJSONString(&line, node)
        return line
    }

    private func append(_ line: inout String, _ key: String, _ value: LogValue) {
        line += ","
        Logger.appendJSONString(&line, key)
        line += ":"
        switch value {
        case .string(let s): Logger.appendJSONString(&line, s)
        case .int(let i): line += String(i)
        case .double(let d): line += d.isFinite ? String(d) : "null"
        case .bool(let b): line += b ? "true" : "false"
        }
    }

    private func emit(_ line: inout String) {
        line += "}\n"
        line.withUTF8 { buf in
            var off = 0
            while off < buf.count {
                let n = write(2, buf.baseAddress! + off, buf.count - off)
                if n <= 0 { if errno == EINTR { continue }; return }
                off += n
            }
        }
    }

    /// RFC 3339 UTC with milliseconds.
    static func timestamp() -> String {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        var t = ts.tv_sec
        var tmv = tm()
        gmtime_r(&t, &tmv)
        let ms = Int(ts.tv_nsec / 1_000_000)
        func p(_ v: Int32, _ w: Int) -> String { let s = String(v); return String(repeating: "0", count: max(0, w - s.count)) + s }
        return
            "\(tmv.tm_year + 1900)-\(p(tmv.tm_mon + 1, 2))-\(p(tmv.tm_mday, 2))T\(p(tmv.tm_hour, 2)):\(p(tmv.tm_min, 2)):\(p(tmv.tm_sec, 2)).\(p(Int32(ms), 3))Z"
    }

    /// Appends `s` as a JSON string literal: the Protocol module's escaper (RFC 8259 §7), one rule for
    /// logs, admin answers and client frames.
    static func appendJSONString(_ out: inout String, _ s: String) {
        out += JSONFragment.string(s).description
    }
}
