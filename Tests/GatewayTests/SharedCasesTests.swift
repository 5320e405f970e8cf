import Foundation
import Testing

/// Every byte-level case in ../shared/cases (inputs that broke other gateways) run by its own probe against
/// the real binary: on the echo path, and on the room path with --strict (a Close frame with the right code
/// is required, a bare TCP close is not enough).
@Suite(.serialized) struct SharedCasesTests {
    static let probe: URL? = {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let candidates = [
            ProcessInfo.processInfo.environment["SWITCHBOARD_SHARED"].map { URL(fileURLWithPath: $0) },
            root.deletingLastPathComponent().appendingPathComponent("shared")
        ].compactMap { $0 }
        return candidates.map { $0.appendingPathComponent("cases/probe.py") }.first { FileManager.default.fileExists(atPath: $0.path) }
    }()

    static let caseIDs = ["C01", "C02", "C04", "C06", "C07", "C08", "C10", "C11", "C13", "C14", "C16", "C18", "C19"]

    func run(_ id: String, path: String, strict: Bool, gw: GatewayProcess) throws -> (Int32, String) {
        guard let probe = SharedCasesTests.probe else { throw TestFailure("../shared/cases/probe.py not found (set SWITCHBOARD_SHARED)") }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["python3", probe.path, "--port", "\(gw.port)", "--path", path, "--only", id] + (strict ? ["--strict"] : [])
        let out = Pipe()
        p.standardOutput = out
        p.standardError = out  // read with stdout: an unread pipe that fills up would block the probe
        try p.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    @Test(arguments: caseIDs)
    func sharedCaseOnEchoPath(_ id: String) throws {
        let gw = try GatewayProcess(["--echo-path", "/echo"], threads: 1)
        let (status, out) = try run(id, path: "/echo", strict: true, gw: gw)
        #expect(status == 0, "\(out)")
        #expect(out.contains("\(id) PASS"), "\(out)")
    }

    @Test(arguments: caseIDs)
    func sharedCaseOnRoomPathStrict(_ id: String) throws {
        let gw = try GatewayProcess(threads: 1)
        let (status, out) = try run(id, path: "/ws", strict: true, gw: gw)
        #expect(status == 0, "\(out)")
        #expect(out.contains("\(id) PASS"), "\(out)")
    }
}
