import CLinux
import Foundation
import Gateway
import Glibc
import Runtime

// switchboard: one gateway node. Flags and their environment twins: `switchboard --help`.
let arguments = Array(CommandLine.arguments.dropFirst())
// `switchboard ctl …`: the server API from a shell (docs/api.md).
if arguments.first == "ctl" {
    exit(Ctl.run(arguments: Array(arguments.dropFirst()), environment: ProcessInfo.processInfo.environment))
}
if arguments.contains("--help") || arguments.contains("-h") {
    print(Config.helpText, terminator: "")
    exit(0)
}
if arguments.contains("--version") {
    print("switchboard \(switchboardVersion)")
    exit(0)
}
// `--health-check`: the container image's HEALTHCHECK, so the image needs no shell or curl at run time.
let healthCheck = arguments.contains("--health-check")
let config: Config
do {
    config = try Config.parse(arguments: arguments.filter { $0 != "--health-check" }, environment: ProcessInfo.processInfo.environment)
} catch {
    FileHandle.standardError.write(Data("switchboard: \(error.description)\n".utf8))
    exit(2)
}
if healthCheck {
    // The admin listener of the node this configuration describes; a wildcard host is probed on loopback.
    let host = config.adminHost == "0.0.0.0" || config.adminHost.isEmpty ? "127.0.0.1" : config.adminHost
    exit(healthProbe(host: host, port: config.adminPort, timeoutSeconds: 2) ? 0 : 1)
}
if let cpu = config.pinCPU, clinux_pin_to_cpu(Int32(cpu)) != 0 {
    FileHandle.standardError.write(Data("switchboard: cannot pin to CPU \(cpu)\n".utf8))
    exit(2)
}
// glibc gives freed memory at the top of a loop thread's heap back past 128 KiB and maps it again on the next
// burst: two mprotect calls per ~10 handshakes under a connection storm (issue 17). Keep 8 MiB before trimming
// and grow by 1 MiB at a time: untouched pages, so RSS stays what is used.
_ = clinux_malloc_keep_top(8 << 20, 1 << 20)
let logger = Logger(level: config.logLevel, node: config.nodeID)
GatewayNode.blockSignals()
let node = GatewayNode(config: config, logger: logger, services: nil)
do {
    try node.start()
} catch {
    logger.error("startup failed", ["error": .string(error.description)])
    exit(1)
}
exit(node.runUntilSignalled())

/// One `GET /health` over a blocking IPv4 socket with a send/receive timeout: true when the status line says 200.
func healthProbe(host: String, port: Int, timeoutSeconds: Int) -> Bool {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { return false }
    defer { close(fd) }
    var timeout = timeval(tv_sec: timeoutSeconds, tv_usec: 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_port = in_port_t(UInt16(truncatingIfNeeded: port).bigEndian)
    guard inet_pton(AF_INET, host, &addr.sin_addr) == 1 else { return false }
    let connected = withUnsafePointer(to: &addr) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    guard connected == 0 else { return false }
    let request = Array("GET /health HTTP/1.0\r\nHost: localhost\r\n\r\n".utf8)
    guard send(fd, request, request.count, Int32(MSG_NOSIGNAL)) == request.count else { return false }
    var reply = [UInt8](repeating: 0, count: 64)
    var got = 0
    while got < 12 {
        let n = reply.withUnsafeMutableBytes { recv(fd, $0.baseAddress! + got, $0.count - got, 0) }
        if n <= 0 { break }
        got += n
    }
    let statusLine = String(decoding: reply[..<got], as: UTF8.self)
    return statusLine.hasPrefix("HTTP/1.1 200") || statusLine.hasPrefix("HTTP/1.0 200")
}
