import Foundation
import Gateway
import Glibc
import Runtime

/// The real `switchboard` binary, started on free loopback ports for one test and killed afterwards.
final class GatewayProcess: @unchecked Sendable {
    let port: Int
    let adminPort: Int
    let process: Process
    let logURL: URL

    /// Directory holding the built products (`switchboard` sits beside the test bundle).
    static var productsDirectory: URL {
        if let dir = ProcessInfo.processInfo.environment["SWITCHBOARD_BIN_DIR"] { return URL(fileURLWithPath: dir) }
        var url = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        while url.path != "/" {
            if FileManager.default.isExecutableFile(atPath: url.appendingPathComponent("switchboard").path) { return url }
            url = url.deletingLastPathComponent()
        }
        // swift-testing runs from the .xctest bundle path; fall back to the package's debug build.
        return URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent(".build/debug")
    }

    static var binary: URL { productsDirectory.appendingPathComponent("switchboard") }

    /// Starts the gateway with `arguments` on fresh ports and waits until `/health` answers (10 s at most,
    /// stretched by `TestTiming.scale`); `healthy(adminPort)` replaces the plain-HTTP probe (e.g. for HTTPS on
    /// the admin port).
    init(_ arguments: [String] = [], threads: Int = 2, environment: [String: String] = [:], healthy: ((Int) -> Bool)? = nil) throws {
        port = try freePort()
        adminPort = try freePort()
        process = Process()
        process.executableURL = GatewayProcess.binary
        process.arguments =
            [
                "--host", "127.0.0.1", "--port", "\(port)", "--admin-port", "\(adminPort)",
                "--threads", "\(threads)", "--log-level", "debug"
            ] + arguments
        var env = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("SWITCHBOARD_") }
        for (k, v) in environment { env[k] = v }
        process.environment = env
        logURL = FileManager.default.temporaryDirectory.appendingPathComponent("switchboard-test-\(port).log")
        _ = FileManager.default.createFile(atPath: logURL.path, contents: nil)
        let logHandle = try FileHandle(forWritingTo: logURL)
        process.standardError = logHandle
        process.standardOutput = logHandle
        try process.run()
        let deadline = Date().addingTimeInterval(TestTiming.seconds(10))
        while Date() < deadline {
            if let healthy {
                if healthy(adminPort) { return }
            } else if let (status, _) = try? httpGet(port: adminPort, path: "/health"), status == 200 {
                return
            }
            if !process.isRunning { break }
            usleep(50_000)
        }
        process.terminate()
        throw TestFailure("gateway did not become healthy; log:\n\(self.log())")
    }

    /// Everything the process wrote to stderr/stdout so far.
    func log() -> String { (try? String(contentsOf: logURL, encoding: .utf8)) ?? "" }

    var pid: Int32 { process.processIdentifier }

    /// Sends `signal` and waits for the exit status (nil on timeout).
    @discardableResult
    func stop(signal: Int32 = SIGTERM, timeout: TimeInterval = 15) -> Int32? {
        guard process.isRunning else { return process.terminationStatus }
        kill(process.processIdentifier, signal)
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning && Date() < deadline { usleep(20_000) }
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            return nil
        }
        return process.terminationStatus
    }

    /// Waits for the process to exit by itself; returns its status (nil on timeout).
    func waitForExit(timeout: TimeInterval) -> Int32? {
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning && Date() < deadline { usleep(20_000) }
        return process.isRunning ? nil : process.terminationStatus
    }

    /// Scrapes `/metrics` and returns the value of one sample line (`name` may include labels).
    func metric(_ name: String) throws -> Double? {
        let (_, body) = try httpGet(port: adminPort, path: "/metrics")
        for line in body.split(separator: "\n") where line.hasPrefix(name + " ") {
            return Double(line.dropFirst(name.count + 1))
        }
        return nil
    }

    deinit {
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
        try? FileManager.default.removeItem(at: logURL)
    }
}

struct TestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}

/// A port that was free a moment ago: the gateway's own listener helpers bind port 0 and read it back.
/// The test process writes to sockets and pipes whose peers may already be gone (a killed gateway, a
/// child that exited early): such a write must fail with EPIPE in that test, not kill the whole run.
let ignoreSIGPIPE: Void = { _ = signal(SIGPIPE, SIG_IGN) }()

func freePort() throws -> Int {
    ignoreSIGPIPE
    return try Socket.unusedLoopbackPort()
}

/// One blocking HTTP/1.1 request over a raw socket; returns status and body.
func httpRequest(port: Int, method: String, path: String, headers: [String: String] = [:], body: [UInt8] = []) throws -> (Int, String) {
    let s = try RawSocket(port: port)
    var req = "\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nConnection: close\r\n"
    for (k, v) in headers { req += "\(k): \(v)\r\n" }
    if !body.isEmpty || method == "POST" { req += "Content-Length: \(body.count)\r\n" }
    req += "\r\n"
    try s.send(Array(req.utf8) + body)
    let data = try s.readToEOF(timeout: 5)
    let text = String(decoding: data, as: UTF8.self)
    guard let sp = text.firstIndex(of: " "), let status = Int(text[text.index(after: sp)...].prefix(3)) else {
        throw TestFailure("bad HTTP response: \(text.prefix(200))")
    }
    let bodyText = text.range(of: "\r\n\r\n").map { String(text[$0.upperBound...]) } ?? ""
    return (status, bodyText)
}

func httpGet(port: Int, path: String) throws -> (Int, String) {
    try httpRequest(port: port, method: "GET", path: path)
}
