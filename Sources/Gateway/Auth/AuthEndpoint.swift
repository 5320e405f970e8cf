import Foundation
import Glibc
import Runtime

/// Where a backend listens: `--auth-url` (the auth backend) or `--proxy-url` (the application backend),
/// `http://host[:port][/path]`.
///
/// Plain HTTP/1.1 only (run the backend beside the gateway or on a private network; TLS to it is not
/// implemented). A host name is resolved (IPv4, `getaddrinfo`) at startup and then every 30 s on a
/// background thread, never on an event loop; an IP literal is used as is.
public final class AuthEndpoint: Sendable {
    /// The host as written in the URL.
    public let host: String
    /// The TCP port (default 80).
    public let port: Int
    /// The request target, default `/`.
    public let path: String
    /// The `Host` header value.
    public let hostHeader: String
    private let resolved: Lock<sockaddr_in?>

    /// A bad `--auth-url`.
    public struct Invalid: Error, CustomStringConvertible, Sendable {
        /// One line naming the problem.
        public let description: String
    }

    /// Parses the URL (no resolution yet: see ``startResolving()``). Errors: not `http://…`, a bad port,
    /// userinfo or a fragment in the URL; `flag` names the option in the message.
    public init(url: String, flag: String = "--auth-url") throws(Invalid) {
        guard url.lowercased().hasPrefix("http://") else {
            throw Invalid(description: "\(flag): expected http://host[:port][/path], got '\(url)' (https is not supported)")
        }
        let rest = url.dropFirst(7)
        let slash = rest.firstIndex(of: "/") ?? rest.endIndex
        let authority = rest[..<slash]
        let target = rest[slash...]
        guard !authority.isEmpty, !authority.contains("@"), !target.contains("#"), !url.contains(" ") else {
            throw Invalid(description: "\(flag): '\(url)' has no host, or has userinfo or a fragment")
        }
        var h = String(authority)
        var p = 80
        if let colon = authority.lastIndex(of: ":") {
            guard let n = Int(authority[authority.index(after: colon)...]), (1...65535).contains(n) else {
                throw Invalid(description: "\(flag): bad port in '\(url)'")
            }
            p = n
            h = String(authority[..<colon])
        }
        host = h
        port = p
        path = target.isEmpty ? "/" : String(target)
        hostHeader = String(authority)
        resolved = Lock(AuthEndpoint.literal(h, port: p))
    }

    /// Resolves a host name now (blocking: call at startup, never on a loop) and every 30 s after on a
    /// background thread. Nothing to do for an IP literal.
    public func startResolving() {
        guard AuthEndpoint.literal(host, port: port) == nil else { return }
        let first = AuthEndpoint.resolve(host, port: port)
        resolved.withLock { $0 = first }
        startRefresh()
    }

    /// The address to connect to now; nil while the name does not resolve.
    public var address: sockaddr_in? { resolved.withLock { $0 } }

    private static func literal(_ host: String, port: Int) -> sockaddr_in? {
        try? Socket.ipv4Address(host: host, port: port)
    }

    /// IPv4 address of `host` (literal, or the first `getaddrinfo` answer). Blocking.
    static func resolve(_ host: String, port: Int) -> sockaddr_in? {
        if let a = literal(host, port: port) { return a }
        var hints = addrinfo()
        hints.ai_family = AF_INET
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var res: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, nil, &hints, &res) == 0, let first = res else { return nil }
        defer { freeaddrinfo(res) }
        guard let sa = first.pointee.ai_addr, first.pointee.ai_family == AF_INET else { return nil }
        var addr = sa.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { $0.pointee }
        addr.sin_port = in_port_t(UInt16(truncatingIfNeeded: port)).bigEndian
        return addr
    }

    private func startRefresh() {
        let h = host
        let p = port
        let thread = Thread { [weak self] in
            while true {
                sleep(30)
                guard let self else { return }
                if let a = AuthEndpoint.resolve(h, port: p) { self.resolved.withLock { $0 = a } }
            }
        }
        thread.name = "auth-dns"
        thread.start()
    }
}
