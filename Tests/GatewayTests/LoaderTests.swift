import Foundation
import Testing

/// `Benchmarks/loader/wsload.c`, the C loader compare.sh measures connection setup with (issue 17), built
/// with the system compiler and run against the real gateway: its counts must match what the gateway saw,
/// and what it counts as done must really be done (a 404, a refused join or a wrong path are failures).
@Suite(.serialized) struct LoaderTests {
    static let binary: URL = {
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("switchboard-wsload-\(getpid())")
        let source = APITest.packageRoot.appendingPathComponent("Benchmarks/loader/wsload.c").path
        let p = Process()
        // The system C compiler, else the Swift toolchain's clang (a fresh machine may have only that).
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        let cc = FileManager.default.isExecutableFile(atPath: "/usr/bin/cc") ? "cc" : "clang"
        p.arguments = [cc, "-O2", "-Wall", "-Wextra", "-Werror", "-o", out.path, source, "-lcrypto"]
        try? p.run()
        p.waitUntilExit()
        return out
    }()

    /// Runs wsload with `arguments` against `gw`; returns its JSON line.
    func load(_ gw: GatewayProcess, _ arguments: [String]) throws -> [String: Any] {
        let p = Process()
        p.executableURL = Self.binary
        p.arguments = ["--port", String(gw.port), "--server-pid", String(gw.pid)] + arguments
        let out = Pipe()
        p.standardOutput = out
        try p.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        guard let json = try JSONSerialization.jsonObject(with: data) as? [String: Any] else { throw TestFailure("wsload printed \(data.count) bytes") }
        return json
    }

    @Test func countsMatchTheGatewayInEveryMode() throws {
        #expect(FileManager.default.isExecutableFile(atPath: Self.binary.path), "cc builds wsload without warnings")
        let gw = try GatewayProcess(threads: 1)
        // A reconnect storm: 3 rounds of 200 clients that stay until the round ends.
        let storm = try load(gw, ["--path", "/ws?join=hs", "--until", "match", "--send", "", "--clients", "200", "--concurrency", "32", "--duration", "0"])
        #expect(storm["completed"] as? Int == 200 && storm["failed"] as? Int == 0 && storm["rounds"] as? Int == 1, "\(storm)")
        #expect((storm["gateway_cpu_us_per_handshake"] as? Double ?? 0) > 0)
        #expect(try gw.metric("switchboard_room_joins_total") == 200)
        // The join frame after the 101, then churn (each connection reset after hello).
        let join = try load(gw, ["--path", "/ws", "--until", "match", "--count", "150", "--concurrency", "16"])
        #expect(join["completed"] as? Int == 150 && join["failed"] as? Int == 0, "\(join)")
        #expect(try gw.metric("switchboard_room_joins_total") == 350)
        let churn = try load(gw, ["--path", "/ws", "--until", "text", "--count", "100", "--concurrency", "8"])
        #expect(churn["completed"] as? Int == 100, "\(churn)")
        #expect(try gw.metric("switchboard_handshakes_completed_total") == 450)
    }

    @Test func failuresAreCountedNotCompleted() throws {
        let gw = try GatewayProcess(["--max-rooms-per-connection", "1"], threads: 1)
        let notFound = try load(gw, ["--path", "/nowhere", "--count", "20", "--concurrency", "4"])
        #expect(notFound["completed"] as? Int == 0 && (notFound["failures"] as? [String: Int])?["not_101"] == 20, "\(notFound)")
        // Joining a second room over the limit answers an error: the loader must not take it for "joined".
        let refused = try load(
            gw,
            [
                "--path", "/ws?join=a", "--until", "match", "--send", #"{"op":"join","room":"b"}"#, "--match", "\"room\":\"b\"", "--count", "10",
                "--concurrency", "2"
            ])
        #expect(refused["completed"] as? Int == 0 && (refused["failures"] as? [String: Int])?["error_text"] == 10, "\(refused)")
    }
}
