import ClusterBus
import Foundation
import Glibc
import Runtime

extension Config {
    /// `--redis-cluster`: seed nodes of a Redis Cluster (every bus role over the cluster; docs/redis.md
    /// "Redis Cluster").
    static let redisClusterOptions: [Option] = [
        Option(
            name: "redis-cluster", kind: .list,
            help:
                "Redis Cluster seed nodes as host:port (IP or DNS name; repeatable or comma list): every bus role over the cluster, rooms on sharded pub/sub; excludes --redis-url",
            apply: { c, v throws(Invalid) in
                for item in v.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces) }) where !item.isEmpty {
                    guard parseSeed(item) != nil else { throw Invalid(description: "--redis-cluster: expected host:port (an IP or a DNS name), got '\(item)'") }
                    c.redisClusterSeeds.append(item)
                }
            }, current: { $0.redisClusterSeeds.joined(separator: ",") }, reset: { $0.redisClusterSeeds = [] })
    ]

    /// True for `redis-cluster://` and `rediss-cluster://` (any case).
    static func isClusterURL(_ url: String) -> Bool {
        let u = url.lowercased()
        return u.hasPrefix("redis-cluster://") || u.hasPrefix("rediss-cluster://")
    }

    /// `--redis-url redis-cluster://[[user]:password@]host:port[,host:port…][/]`: the seeds and credentials of a
    /// Redis Cluster (the same as `--redis-cluster` plus `AUTH`); `rediss-cluster://` makes every cluster
    /// connection TLS with the `--redis-tls-*` settings. Errors: `Invalid` for a seed that is not `host:port`
    /// or a URL without seeds.
    static func applyClusterURL(_ c: inout Config, _ url: String) throws(Invalid) {
        let tls = url.lowercased().hasPrefix("rediss-cluster://")
        c.redisClusterTLS = tls
        var rest = Substring(url.dropFirst(tls ? "rediss-cluster://".count : "redis-cluster://".count))
        if rest.hasSuffix("/") { rest = rest.dropLast() }
        if let at = rest.lastIndex(of: "@") {
            let info = rest[..<at]
            rest = rest[rest.index(after: at)...]
            if let colon = info.firstIndex(of: ":") {
                c.redisClusterUsername = info[..<colon].isEmpty ? nil : (String(info[..<colon]).removingPercentEncoding ?? String(info[..<colon]))
                c.redisClusterPassword = String(info[info.index(after: colon)...]).removingPercentEncoding ?? String(info[info.index(after: colon)...])
            } else {
                c.redisClusterPassword = String(info).removingPercentEncoding ?? String(info)
            }
        }
        let seeds = rest.split(separator: ",").map(String.init)
        guard !seeds.isEmpty else { throw Invalid(description: "--redis-url: redis-cluster:// needs at least one host:port seed") }
        for s in seeds {
            guard parseSeed(s) != nil else { throw Invalid(description: "--redis-url: expected host:port seeds (an IP or a DNS name), got '\(s)'") }
        }
        c.redisClusterSeeds += seeds
    }

    /// `ip:port`, `[ipv6]:port` or `name:port` (a DNS name: letters, digits, `-`, `_`, `.`, at most 253 bytes)
    /// with a port in 1...65535, or nil. Names are resolved by the bus off its loop (`RedisHostResolver`).
    public static func parseSeed(_ text: String) -> (host: String, port: Int)? {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]), (1...65535).contains(port) else { return nil }
        var host = String(text[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") {
            host = String(host.dropFirst().dropLast())
            return Socket.isNumericAddress(host) ? (host, port) : nil
        }
        guard Socket.isNumericAddress(host) || isHostName(host) else { return nil }
        return (host, port)
    }

    /// A DNS name as RFC 1123 allows it (plus `_`, seen in service names): dot-separated labels of 1...63
    /// letters, digits, `-` or `_`, not starting or ending with `-`, at most 253 bytes.
    static func isHostName(_ host: String) -> Bool {
        guard !host.isEmpty, host.utf8.count <= 253 else { return false }
        let name = host.hasSuffix(".") ? host.dropLast() : Substring(host)
        return name.split(separator: ".", omittingEmptySubsequences: false).allSatisfy { label in
            (1...63).contains(label.utf8.count) && label.first != "-" && label.last != "-"
                && label.utf8.allSatisfy { b in
                    b == UInt8(ascii: "-") || b == UInt8(ascii: "_") || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(b)
                        || (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(b | 0x20)
                }
        }
    }

    /// `--redis-cluster` and `--redis-url` exclude each other. Errors: `Invalid`.
    static func finalizeRedisCluster(_ config: inout Config) throws(Invalid) {
        if !config.redisClusterSeeds.isEmpty && config.redisURL != nil {
            throw Invalid(description: "--redis-cluster and --redis-url exclude each other")
        }
    }
}
