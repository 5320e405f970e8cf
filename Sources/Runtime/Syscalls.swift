import CLinux
import Foundation
import Glibc
import Synchronization

/// A failed system call: the call's name and `errno` copied at the failure site.
public struct SyscallError: Error, CustomStringConvertible, Sendable {
    /// The system call that failed, e.g. `"bind"`.
    public let call: String
    /// `errno` right after the call.
    public let code: CInt
    public var description: String { "\(call): \(String(cString: strerror(code))) (errno \(code))" }
}

/// Runs `body`, retrying on `EINTR`; a negative result throws with `errno`.
@inline(__always)
func syscall<T: BinaryInteger>(_ name: String, _ body: () -> T) throws(SyscallError) -> T {
    while true {
        let r = body()
        if r >= 0 { return r }
        let e = errno
        if e == EINTR { continue }
        throw SyscallError(call: name, code: e)
    }
}

/// Socket helpers shared by listeners, the admin server and the bench tool.
public enum Socket {
    /// A non-blocking TCP listener on `host:port` (IPv4 dotted quad or "localhost"), `SO_REUSEADDR`, and
    /// `SO_REUSEPORT` when `reusePort` (one listener per event loop, the kernel spreads connections).
    /// Errors: `SyscallError` from socket/bind/listen; an unparsable host is `EINVAL`.
    public static func listen(host: String, port: Int, reusePort: Bool, backlog: Int32 = 4096) throws(SyscallError) -> CInt {
        let fd = try syscall("socket") { socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0) }
        do {
            try setOption(fd, SOL_SOCKET, SO_REUSEADDR, 1)
            if reusePort { try setOption(fd, SOL_SOCKET, SO_REUSEPORT, 1) }
            var addr = try ipv4Address(host: host, port: port)
            _ = try syscall("bind \(host):\(port)") {
                withUnsafePointer(to: &addr) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
                }
            }
            _ = try syscall("listen") { Glibc.listen(fd, backlog) }
            return fd
        } catch {
            close(fd)
            throw error
        }
    }

    /// A non-blocking TCP socket (`SOCK_CLOEXEC`, `TCP_NODELAY`) whose connect to `address` is under way, or
    /// done (`EINPROGRESS` is the expected answer, not an error): the caller registers it and learns the outcome
    /// from writability or the first read. With `source` it is bound to that address first, with
    /// `IP_BIND_ADDRESS_NO_PORT` so the port is still chosen at connect (many sources share the port range).
    /// Errors: `SyscallError` from socket, bind or connect, with the socket already closed.
    public static func startConnect(to address: sockaddr_in, from source: sockaddr_in? = nil) throws(SyscallError) -> CInt {
        let fd = socket(AF_INET, CInt(SOCK_STREAM.rawValue) | CInt(SOCK_NONBLOCK.rawValue) | CInt(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw SyscallError(call: "socket", code: errno) }
        try? setOption(fd, CInt(IPPROTO_TCP), TCP_NODELAY, 1)
        func fail(_ call: String) -> SyscallError {
            let e = errno
            close(fd)
            return SyscallError(call: call, code: e)
        }
        if var src = source {
            try? setOption(fd, CInt(IPPROTO_IP), 24, 1)  // IP_BIND_ADDRESS_NO_PORT
            let r = withUnsafePointer(to: &src) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            if r != 0 { throw fail("bind") }
        }
        var addr = address
        let r = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        if r != 0 && errno != EINPROGRESS { throw fail("connect") }
        return fd
    }

    /// A loopback TCP port nothing was bound to a moment ago, for tests and tools that start servers on
    /// ports they choose. Taken below the kernel's ephemeral range (`ip_local_port_range`, default from
    /// 32768), where no outgoing connection's local port can land between this check and the server's
    /// bind (port 0 answers from that range and did collide under parallel tests), walking from a random
    /// start so that calls in one process do not repeat a port. Errors: `SyscallError` when no port in
    /// 1024..<start of the ephemeral range can be bound.
    public static func unusedLoopbackPort() throws(SyscallError) -> Int {
        let ephemeralStart =
            (try? String(contentsOfFile: "/proc/sys/net/ipv4/ip_local_port_range", encoding: .utf8))
            .flatMap { $0.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\n" }).first.flatMap { Int($0) } } ?? 32768
        let low = 10_000 < ephemeralStart - 1000 ? 10_000 : 1024
        let span = max(1, ephemeralStart - low)
        for _ in 0..<min(span, 2000) {
            let candidate = low + portCursor.add(1, ordering: .relaxed).newValue % span
            if let fd = try? listen(host: "127.0.0.1", port: candidate, reusePort: false) {
                close(fd)
                return candidate
            }
        }
        throw SyscallError(call: "bind", code: EADDRINUSE)
    }

    private static let portCursor = Atomic<Int>(Int.random(in: 0..<20_000))

    /// The port a bound socket listens on (useful with port 0).
    public static func localPort(_ fd: CInt) -> Int {
        var addr = sockaddr_in()
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
        return Int(UInt16(bigEndian: addr.sin_port))
    }

    /// Whether `host` is an IPv4 or IPv6 address literal (`inet_pton`), not a name to resolve or to send as
    /// SNI / check against a certificate's DNS names.
    public static func isNumericAddress(_ host: String) -> Bool {
        var v4 = in_addr()
        var v6 = in6_addr()
        return inet_pton(AF_INET, host, &v4) == 1 || inet_pton(AF_INET6, host, &v6) == 1
    }

    /// `sockaddr_in` for a dotted-quad IPv4 host ("localhost" means 127.0.0.1).
    public static func ipv4Address(host: String, port: Int) throws(SyscallError) -> sockaddr_in {
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(truncatingIfNeeded: port)).bigEndian
        let h = host == "localhost" ? "127.0.0.1" : host
        if inet_pton(AF_INET, h, &addr.sin_addr) != 1 { throw SyscallError(call: "inet_pton(\(host))", code: EINVAL) }
        return addr
    }

    /// Sets an integer socket option.
    public static func setOption(_ fd: CInt, _ level: CInt, _ name: CInt, _ value: CInt) throws(SyscallError) {
        var v = value
        _ = try syscall("setsockopt") { setsockopt(fd, level, name, &v, socklen_t(MemoryLayout<CInt>.size)) }
    }

    /// The peer's IPv4 address as text ("" when unknown).
    public static func peerAddress(_ fd: CInt) -> String {
        var addr = sockaddr_in()
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        let r = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getpeername(fd, $0, &len) } }
        guard r == 0 else { return "" }
        var buf = [CChar](repeating: 0, count: Int(INET_ADDRSTRLEN))
        guard inet_ntop(AF_INET, &addr.sin_addr, &buf, socklen_t(buf.count)) != nil else { return "" }
        return String(decoding: buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
