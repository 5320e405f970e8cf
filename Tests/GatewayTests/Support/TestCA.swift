import Foundation
import Glibc

/// A throwaway certificate authority and server certificates made with the `openssl` command in a temporary
/// directory (removed in `deinit`): `server` (127.0.0.1, localhost), `other` (other.test, for SNI), a key
/// that belongs to neither, and `expired` (notAfter in 2020).
final class TestCA {
    let dir: URL

    init() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("switchboard-tls-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let script = """
            set -e
            key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }
            key ca.key.pem
            openssl req -x509 -key ca.key.pem -out ca.pem -days 30 -subj "/CN=Switchboard Test CA" 2>/dev/null
            leaf() { # name subjectAltName
              key "$1.key.pem"
              openssl req -new -key "$1.key.pem" -out "$1.csr" -subj "/CN=$1" 2>/dev/null
              printf 'subjectAltName=%s\\n' "$2" > "$1.ext"
              openssl x509 -req -in "$1.csr" -CA ca.pem -CAkey ca.key.pem -CAcreateserial -days 30 -extfile "$1.ext" -out "$1.pem" 2>/dev/null
            }
            leaf server "IP:127.0.0.1,DNS:localhost"
            leaf other "DNS:other.test"
            key stray.key.pem
            # An expired certificate: `openssl ca` takes explicit dates.
            mkdir -p expd && : > expd/index.txt && echo 01 > expd/serial
            printf '[ca]\\ndefault_ca=d\\n[d]\\ndatabase=expd/index.txt\\nnew_certs_dir=expd\\nserial=expd/serial\\ndefault_md=sha256\\npolicy=p\\ncopy_extensions=copy\\n[p]\\ncommonName=supplied\\n' > expd/ca.cnf
            key expired.key.pem
            openssl req -new -key expired.key.pem -out expired.csr -subj "/CN=expired" -addext "subjectAltName=IP:127.0.0.1" 2>/dev/null
            openssl ca -batch -config expd/ca.cnf -cert ca.pem -keyfile ca.key.pem -in expired.csr -out expired.pem -notext \\
              -startdate 20200101000000Z -enddate 20200102000000Z >/dev/null 2>&1
            """
        let (status, out) = try runTool(["bash", "-c", script], directory: dir)
        guard status == 0 else { throw TestFailure("test CA: \(out)") }
    }

    deinit { try? FileManager.default.removeItem(at: dir) }

    func path(_ name: String) -> String { dir.appendingPathComponent(name).path }

    var caPath: String { path("ca.pem") }

    /// A new leaf named `name` for 127.0.0.1 and localhost, signed by this CA (for reload tests).
    func issue(_ name: String) throws {
        let script = """
            set -e
            openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out \(name).key.pem 2>/dev/null
            openssl req -new -key \(name).key.pem -out \(name).csr -subj "/CN=\(name)" 2>/dev/null
            openssl x509 -req -in \(name).csr -CA ca.pem -CAkey ca.key.pem -CAcreateserial -days 30 -extfile server.ext -out \(name).pem 2>/dev/null
            """
        let (status, out) = try runTool(["bash", "-c", script], directory: dir)
        guard status == 0 else { throw TestFailure("issue \(name): \(out)") }
    }

    /// `--tls-cert`/`--tls-key` flags for the named leaves, the first being the default.
    func flags(_ names: String...) -> [String] {
        names.flatMap { ["--tls-cert", path("\($0).pem"), "--tls-key", path("\($0).key.pem")] }
    }
}

/// Runs a command (through `/usr/bin/env`, so PATH applies) and returns its exit status and combined output.
/// `input` is written to its stdin, which is then closed; a command still running after `timeout` is killed.
func runTool(
    _ arguments: [String], directory: URL? = nil, environment: [String: String] = [:], input: String? = nil,
    timeout: TimeInterval = 60
) throws -> (Int32, String) {
    ignoreSIGPIPE
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    p.arguments = arguments
    if let directory { p.currentDirectoryURL = directory }
    var env = ProcessInfo.processInfo.environment
    for (k, v) in environment { env[k] = v }
    p.environment = env
    let out = Pipe()
    p.standardOutput = out
    p.standardError = out
    let inPipe = Pipe()
    p.standardInput = inPipe
    try p.run()
    if let input { try? inPipe.fileHandleForWriting.write(contentsOf: Data(input.utf8)) }
    try? inPipe.fileHandleForWriting.close()
    let killer = DispatchWorkItem { if p.isRunning { kill(p.processIdentifier, SIGKILL) } }
    DispatchQueue.global().asyncAfter(deadline: .now() + timeout, execute: killer)
    let data = out.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    killer.cancel()
    return (p.terminationStatus, String(decoding: data, as: UTF8.self))
}

/// Debian's Python 3 (python3-websockets comes from Debian, scripts/deps.sh test).
let debianPython = "/usr/bin/python3"

/// Open descriptors of process `pid`.
func openFDCount(_ pid: Int32) -> Int {
    (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd").count) ?? -1
}
