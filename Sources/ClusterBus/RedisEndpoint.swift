import Runtime

/// Where the cluster bus finds Redis: a parsed `redis://[[user]:password@]host[:port][/db]` URL, or
/// `rediss://…` for TLS (`tls` true; the certificate checks are `RedisTLSSettings`).
///
/// - `host`: a name, an IPv4 address or a bracketed IPv6 address (`redis://[::1]:6379`); stored without brackets.
/// - `port`: 1...65535, default 6379.
/// - `database`: the `SELECT` index for keys (streams, presence, registry), default 0. Pub/sub channels are
///   global in Redis, so every node of a cluster must use the same database *and* prefix.
/// - `username` / `password`: sent with `AUTH` on both connections; percent-encoding is decoded.
///
/// `description` masks the password (for the startup log line).
public struct RedisEndpoint: Sendable, Equatable, CustomStringConvertible {
    public var host: String
    public var port: Int
    public var database: Int
    public var username: String?
    public var password: String?
    /// True for `rediss://`: every connection is TLS, never downgraded.
    public var tls: Bool

    public init(host: String, port: Int = 6379, database: Int = 0, username: String? = nil, password: String? = nil, tls: Bool = false) {
        self.tls = tls
        self.host = host
        self.port = port
        self.database = database
        self.username = username
        self.password = password
    }

    /// Why a URL was rejected; `description` is one line naming the problem.
    public struct Invalid: Error, Equatable, Sendable, CustomStringConvertible {
        public let description: String
    }

    /// Parses `url`. Errors: `Invalid` for another scheme, an empty host, a port outside 1...65535, a database
    /// index outside 0...1,000,000, a query string or a bad percent escape.
    public init(url: String) throws(Invalid) {
        let tls = url.lowercased().hasPrefix("rediss://")
        let scheme = tls ? "rediss://" : "redis://"
        guard url.lowercased().hasPrefix(scheme) else {
            throw Invalid(description: "expected redis://host:port/db or rediss://host:port/db, got '\(url)'")
        }
        var rest = Substring(url.dropFirst(scheme.count))
        guard !rest.contains("?"), !rest.contains("#") else { throw Invalid(description: "query strings are not supported") }
        var user: String? = nil
        var pass: String? = nil
        if let at = rest.lastIndex(of: "@") {
            let info = rest[..<at]
            rest = rest[rest.index(after: at)...]
            if let colon = info.firstIndex(of: ":") {
                let u = try RedisEndpoint.percentDecode(info[..<colon])
                user = u.isEmpty ? nil : u
                pass = try RedisEndpoint.percentDecode(info[info.index(after: colon)...])
            } else {
                // redis://secret@host is the common shorthand for a password without a user.
                pass = try RedisEndpoint.percentDecode(info)
            }
        }
        var authority = rest
        var path: Substring = ""
        if let slash = rest.firstIndex(of: "/") {
            authority = rest[..<slash]
            path = rest[rest.index(after: slash)...]
        }
        var host: Substring
        var portText: Substring? = nil
        if authority.hasPrefix("[") {
            guard let close = authority.firstIndex(of: "]") else { throw Invalid(description: "unterminated IPv6 address") }
            host = authority[authority.index(after: authority.startIndex)..<close]
            let after = authority[authority.index(after: close)...]
            if !after.isEmpty {
                guard after.hasPrefix(":") else { throw Invalid(description: "unexpected text after the IPv6 address") }
                portText = after.dropFirst()
            }
        } else if let colon = authority.lastIndex(of: ":") {
            host = authority[..<colon]
            portText = authority[authority.index(after: colon)...]
        } else {
            host = authority
        }
        guard !host.isEmpty else { throw Invalid(description: "no host") }
        var port = 6379
        if let p = portText {
            guard let n = Int(p), (1...65535).contains(n) else { throw Invalid(description: "port must be 1...65535, got '\(p)'") }
            port = n
        }
        var database = 0
        let db = path.hasSuffix("/") ? path.dropLast() : path
        if !db.isEmpty {
            guard let n = Int(db), (0...1_000_000).contains(n) else { throw Invalid(description: "database must be a number, got '\(db)'") }
            database = n
        }
        self.init(host: String(host), port: port, database: database, username: user, password: pass, tls: tls)
    }

    /// `redis://host:port/db` (or `rediss://`) with `***` for a password.
    public var description: String {
        var s = tls ? "rediss://" : "redis://"
        if username != nil || password != nil {
            s += username ?? ""
            if password != nil { s += ":***" }
            s += "@"
        }
        s += host.contains(":") ? "[\(host)]" : host
        return s + ":\(port)/\(database)"
    }

    private static func percentDecode(_ s: Substring) throws(Invalid) -> String {
        guard s.contains("%") else { return String(s) }
        var out: [UInt8] = []
        var bytes = Array(s.utf8)[...]
        while let b = bytes.popFirst() {
            if b == UInt8(ascii: "%") {
                guard bytes.count >= 2, let v = UInt8(String(decoding: bytes.prefix(2), as: UTF8.self), radix: 16) else {
                    throw Invalid(description: "bad percent escape in the credentials")
                }
                out.append(v)
                bytes = bytes.dropFirst(2)
            } else {
                out.append(b)
            }
        }
        return String(decoding: out, as: UTF8.self)
    }
}
