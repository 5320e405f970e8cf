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
                "Redis Cluster seed nodes as ip:port (numeric; repeatable or comma list): every bus role over the cluster, rooms on sharded pub/sub; excludes --redis-url",
            apply: { c, v throws(Invalid) in
                for item in v.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces) }) where !item.isEmpty {
                    guard parseSeed(item) != nil else { throw Invalid(description: "--redis-cluster: expected ip:port with a numeric address, got '\(item)'") }
                    c.redisClusterSeeds.append(item)
                }
            }, current: { $0.redisClusterSeeds.joined(separator: ",") }, reset: { $0.redisClusterSeeds = [] })
    ]

    /// `--redis-url redis-cluster://[[user]:password@]ip:port[,ip:port…][/]`: the seeds and credentials of a
    /// Redis Cluster (the same as `--redis-cluster` plus `AUTH`). Errors: `Invalid` for a seed that is not a
    /// numeric `ip:port` or a URL without seeds.
    static func applyClusterURL(_ c: inout Config, _ url: String) throws(Invalid) {
        var rest = Substring(url.dropFirst("redis-cluster://".count))
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
        guard !seeds.isEmpty else { throw Invalid(description: "--redis-url: redis-cluster:// needs at least one ip:port seed") }
        for s in seeds {
            guard parseSeed(s) != nil else { throw Invalid(description: "--redis-url: expected ip:port seeds with numeric addresses, got '\(s)'") }
        }
        c.redisClusterSeeds += seeds
    }

    /// `ip:port` or `[ipv6]:port` with a numeric address and a port in 1...65535, or nil.
    public static func parseSeed(_ text: String) -> (host: String, port: Int)? {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]), (1...65535).contains(port) else { return nil }
        var host = String(text[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        guard Socket.isNumericAddress(host) else { return nil }
        return (host, port)
    }

    /// `--redis-cluster` and `--redis-url` exclude each other. Errors: `Invalid`.
    static func finalizeRedisCluster(_ config: inout Config) throws(Invalid) {
        if !config.redisClusterSeeds.isEmpty && config.redisURL != nil {
            throw Invalid(description: "--redis-cluster and --redis-url exclude each other")
        }
    }
}
