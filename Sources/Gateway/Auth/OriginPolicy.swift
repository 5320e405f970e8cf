import Runtime

/// Which browser origins may open a WebSocket (RFC 6455 §10.2: a server that is not meant for every web
/// page must check `Origin` and refuse others; this is what stops cross-site WebSocket hijacking, where a
/// foreign page rides on the user's cookies).
///
/// Entries (`--allowed-origins`, comma list), compared after lower-casing scheme and host and dropping a
/// default port (80 for http, 443 for https):
/// - `https://app.example.com`, `http://localhost:3000`: that exact origin;
/// - `https://*.example.com`: any subdomain, at any depth, of example.com on https with the default port
///   (not example.com itself);
/// - `*.example.com` or `app.example.com` without a scheme: the same for http and https;
/// - `null`: the opaque origin that sandboxed frames and `file:` pages send (refused unless listed);
/// - `*`: every origin (the same as not setting the flag).
/// A request without `Origin` (not a browser) is governed by `--allow-no-origin` separately.
public struct OriginPolicy: Sendable {
    struct Wildcard: Sendable, Hashable {
        /// nil: http and https.
        let scheme: String?
        /// ".example.com".
        let suffix: String
        let port: Int?
    }

    /// True when any present Origin is allowed (no list, or `*` in it).
    public let allowsAnyOrigin: Bool
    /// Whether a request without an `Origin` header is allowed.
    public let allowsMissingOrigin: Bool
    private let exact: Set<String>
    private let wildcards: [Wildcard]

    /// A configuration error naming the entry.
    public struct Invalid: Error, CustomStringConvertible, Sendable {
        /// One line, e.g. "--allowed-origins: 'ftp://x' is not an origin".
        public let description: String
    }

    /// Builds the policy from the flag's entries. An empty list allows every origin.
    /// Errors: an entry that is not an origin or pattern as above.
    public init(allowed: [String], allowMissing: Bool) throws(Invalid) {
        var any = allowed.isEmpty
        var exact = Set<String>()
        var wild: [Wildcard] = []
        for raw in allowed {
            let entry = raw.trimmingCharacters(in: .whitespaces).lowercased()
            if entry.isEmpty { continue }
            if entry == "*" { any = true; continue }
            if entry == "null" { exact.insert("null"); continue }
            var scheme: String? = nil
            var authority = Substring(entry)
            if let r = entry.range(of: "://") {
                scheme = String(entry[..<r.lowerBound])
                authority = entry[r.upperBound...]
                guard scheme == "http" || scheme == "https" else { throw Invalid(description: "--allowed-origins: '\(raw)' must use http or https") }
            }
            guard let (host, port) = Self.splitAuthority(authority, scheme: scheme) else {
                throw Invalid(description: "--allowed-origins: '\(raw)' is not an origin (scheme://host[:port]) or *.domain pattern")
            }
            if host.hasPrefix("*.") {
                let suffix = String(host.dropFirst(1))
                guard suffix.count > 1, !suffix.dropFirst().contains("*") else { throw Invalid(description: "--allowed-origins: bad pattern '\(raw)'") }
                wild.append(Wildcard(scheme: scheme, suffix: suffix, port: port))
            } else {
                guard !host.contains("*") else { throw Invalid(description: "--allowed-origins: '*' is only allowed as the first label ('*.example.com')") }
                for s in scheme.map({ [$0] }) ?? ["http", "https"] {
                    exact.insert(Self.serialize(scheme: s, host: host, port: port))
                }
            }
        }
        self.allowsAnyOrigin = any
        self.allowsMissingOrigin = allowMissing
        self.exact = exact
        self.wildcards = wild
    }

    /// Whether a handshake with this `Origin` value (nil when absent) may upgrade.
    public func allows(_ origin: String?) -> Bool {
        guard let origin else { return allowsMissingOrigin }
        if allowsAnyOrigin { return true }
        let o = origin.trimmingCharacters(in: .whitespaces).lowercased()
        if o == "null" { return exact.contains("null") }
        guard let r = o.range(of: "://") else { return false }
        let scheme = String(o[..<r.lowerBound])
        guard scheme == "http" || scheme == "https", let (host, port) = Self.splitAuthority(o[r.upperBound...], scheme: scheme),
            !host.contains("*")
        else { return false }
        if exact.contains(Self.serialize(scheme: scheme, host: host, port: port)) { return true }
        for w in wildcards where (w.scheme == nil || w.scheme == scheme) && w.port == port {
            if host.hasSuffix(w.suffix) && host.count > w.suffix.count { return true }
        }
        return false
    }

    /// `host[:port]` with no path, query, fragment or userinfo; the default port of `scheme` becomes nil.
    private static func splitAuthority(_ a: Substring, scheme: String?) -> (String, Int?)? {
        guard !a.isEmpty, !a.contains(where: { "/?#@ \\".contains($0) }) else { return nil }
        var host = a
        var port: Int? = nil
        let closingBracket = a.lastIndex(of: "]")
        if let colon = a.lastIndex(of: ":"), closingBracket.map({ colon > $0 }) ?? !a.hasPrefix("[") {
            guard let p = Int(a[a.index(after: colon)...]), (1...65535).contains(p) else { return nil }
            port = p
            host = a[..<colon]
        }
        guard !host.isEmpty else { return nil }
        if let p = port, (scheme == "http" && p == 80) || (scheme == "https" && p == 443) { port = nil }
        return (String(host), port)
    }

    private static func serialize(scheme: String, host: String, port: Int?) -> String {
        port.map { "\(scheme)://\(host):\($0)" } ?? "\(scheme)://\(host)"
    }
}
