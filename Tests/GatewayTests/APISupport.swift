import Foundation
import Glibc
import Protocol
import Runtime

/// Helpers of the server API tests: API calls over HTTP, authenticated clients, raw JSON frames.
enum APITest {
    static let key = "api-key-one-0123456789"
    static let otherKey = "api-key-two-0123456789"

    /// `POST /api/<method>` with `body`; returns the status and the decoded JSON object.
    static func call(
        _ adminPort: Int, _ method: String, _ body: String, key: String? = APITest.key,
        headers: [String: String] = [:]
    ) throws -> (status: Int, json: [String: Any]) {
        var h = headers
        if let key { h["Authorization"] = "Bearer \(key)" }
        h["Content-Type"] = "application/json"
        let (status, text) = try httpRequest(port: adminPort, method: "POST", path: "/api/\(method)", headers: h, body: Array(body.utf8))
        let json = (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any] ?? ["_raw": text]
        return (status, json)
    }

    /// A room-protocol client authenticated as `user` (HS256 token of the test keys, every room allowed).
    static func client(_ port: Int, user: String) throws -> WSClient {
        let token = TokenFactory.make(claims: TokenFactory.claims(sub: user, rooms: ["**"], publish: ["**"]))
        return try WSClient(port: port, headers: [HTTPHeader("Authorization", "Bearer \(token)")])
    }

    /// The next text frame as a JSON object (skips pings); nil on timeout; throws on close.
    static func next(_ c: WSClient, timeout: TimeInterval = 3) throws -> [String: Any]? {
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            guard let e = try c.next(timeout: max(0, deadline.timeIntervalSinceNow)) else { return nil }
            switch e {
            case .text(let t): return (try? JSONSerialization.jsonObject(with: Data(t.utf8))) as? [String: Any] ?? ["_raw": t]
            case .close(let code, let reason): throw TestFailure("closed \(code.map(String.init) ?? "-") \(reason)")
            default: continue
            }
        }
    }

    /// Frames until one with `op`; nil on timeout.
    static func next(_ c: WSClient, op: String, timeout: TimeInterval = 3) throws -> [String: Any]? {
        let deadline = Date().addingTimeInterval(timeout)
        while let m = try next(c, timeout: max(0, deadline.timeIntervalSinceNow)) {
            if m["op"] as? String == op { return m }
        }
        return nil
    }

    /// Waits until `condition` holds (50 ms polls).
    static func waitUntil(_ timeout: TimeInterval, _ what: String, _ condition: () throws -> Bool) throws {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if try condition() { return }
            usleep(50_000)
        }
        throw TestFailure("timed out after \(timeout)s waiting for \(what)")
    }

    /// Method names listed in a markdown file's `### <method>` headings under "## Methods".
    static func documentedMethods(_ markdown: String) -> [String] {
        guard let start = markdown.range(of: "## Methods") else { return [] }
        let rest = markdown[start.upperBound...]
        let section = rest.range(of: "\n## ").map { rest[..<$0.lowerBound] } ?? rest
        return section.split(separator: "\n").compactMap { line in
            guard line.hasPrefix("### ") else { return nil }
            return String(line.dropFirst(4).prefix { $0 != " " }.filter { $0 != "`" })
        }
    }

    /// The package root (for docs).
    static var packageRoot: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    }

    /// Runs `switchboard` with `arguments` and `environment`; returns exit status, stdout and stderr.
    static func run(_ arguments: [String], environment: [String: String] = [:], timeout: TimeInterval = 10) throws -> (status: Int32, out: String, err: String)
    {
        let p = Process()
        p.executableURL = GatewayProcess.binary
        p.arguments = arguments
        var env = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("SWITCHBOARD_") }
        for (k, v) in environment { env[k] = v }
        p.environment = env
        let out = Pipe()
        let err = Pipe()
        p.standardOutput = out
        p.standardError = err
        try p.run()
        let deadline = Date().addingTimeInterval(timeout)
        // Read while it runs so a large output cannot fill the pipe and block it.
        let outData = Lock(Data())
        let errData = Lock(Data())
        let group = DispatchGroup()
        group.enter()
        DispatchQueue.global().async {
            let d = out.fileHandleForReading.readDataToEndOfFile(); outData.withLock { $0 = d }; group.leave()
        }
        group.enter()
        DispatchQueue.global().async {
            let d = err.fileHandleForReading.readDataToEndOfFile(); errData.withLock { $0 = d }; group.leave()
        }
        while p.isRunning && Date() < deadline { usleep(10_000) }
        if p.isRunning { p.terminate() }
        p.waitUntilExit()
        group.wait()
        return (p.terminationStatus, String(decoding: outData.withLock { $0 }, as: UTF8.self), String(decoding: errData.withLock { $0 }, as: UTF8.self))
    }
}
