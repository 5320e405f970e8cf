import CLinux
import Foundation
import Glibc

/// A blocking TCP socket to 127.0.0.1 with poll-based timeouts, for tests that speak bytes.
final class RawSocket {
    let fd: CInt
    var buffer: [UInt8] = []

    /// - Parameter receiveBuffer: SO_RCVBUF set before connecting (so the TCP window stays small), or nil.
    init(port: Int, receiveBuffer: Int? = nil) throws {
        ignoreSIGPIPE
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        if var size = receiveBuffer.map(CInt.init) {
            setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<CInt>.size))
        }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = in_port_t(UInt16(port)).bigEndian
        let r = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        if r != 0 {
            // No close here: `fd` is set, so deinit runs for this failed init and closes it. Closing it
            // twice would close whatever another test thread was given that number in between.
            throw TestFailure("connect to \(port): errno \(errno)")
        }
        var one: CInt = 1
        setsockopt(fd, CInt(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<CInt>.size))
    }

    deinit { close(fd) }

    func send(_ bytes: [UInt8]) throws {
        var off = 0
        while off < bytes.count {
            let n = bytes[off...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n < 0 {
                if errno == EINTR { continue }
                throw TestFailure("send: errno \(errno)")
            }
            off += n
        }
    }

    /// Waits up to `timeout` seconds for more bytes; returns false on timeout, throws on EOF/reset.
    func fill(timeout: TimeInterval) throws -> Bool {
        var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        let r = poll(&p, 1, Int32(max(0, timeout * 1000)))
        if r == 0 { return false }
        var chunk = [UInt8](repeating: 0, count: 65536)
        let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        if n == 0 { throw SocketClosed(reset: false) }
        if n < 0 {
            if errno == EINTR || errno == EAGAIN { return true }
            throw SocketClosed(reset: true)
        }
        buffer.append(contentsOf: chunk[0..<n])
        return true
    }

    /// Reads until EOF (or `timeout`), returning everything.
    func readToEOF(timeout: TimeInterval) throws -> [UInt8] {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            do {
                if try !fill(timeout: deadline.timeIntervalSinceNow) { break }
            } catch is SocketClosed {
                break
            }
        }
        defer { buffer = [] }
        return buffer
    }

    /// True when the peer closed (EOF or reset) within `timeout`; buffered bytes are discarded.
    func waitForEOF(timeout: TimeInterval) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            do {
                if try !fill(timeout: deadline.timeIntervalSinceNow) { return false }
                buffer = []
            } catch {
                return true
            }
        }
        return false
    }
}

struct SocketClosed: Error { let reset: Bool }
