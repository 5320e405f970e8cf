import ClusterBus
import Glibc

extension Config {
    /// `--redis-cluster`: seed nodes of a Redis Cluster (draft mode: rooms and history over the cluster,
    /// presence, registry and analytics node-local; docs/redis.md "Redis Cluster").
    static let redisClusterOptions: [Option] = [
        Option(name: "redis-cluster", kind: .list, help: "Redis Cluster seed nodes as ip:port (numeric; repeatable or comma list): rooms over sharded pub/sub (draft: presence and registry stay node-local); excludes --redis-url",
               apply: { c, v throws(Invalid) in
                   for item in v.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces) }) where !item.isEmpty {
                       guard parseSeed(item) != nil else { throw Invalid(description: "--redis-cluster: expected ip:port with a numeric address, got '\(item)'") }
                       c.redisClusterSeeds.append(item)
                   }
               }, current: { $0.redisClusterSeeds.joined(separator: ",") }, reset: { $0.redisClusterSeeds = [] }),
    ]

    /// `ip:port` or `[ipv6]:port` with a numeric address and a port in 1...65535, or nil.
    public static func parseSeed(_ text: String) -> (host: String, port: Int)? {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]), (1...65535).contains(port) else { return nil }
        var host = String(text[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        var v4 = in_addr()
        var v6 = in6_addr()
        guard inet_pton(AF_INET, host, &v4) == 1 || inet_pton(AF_INET6, host, &v6) == 1 else { return nil }
        return (host, port)
    }

    /// `--redis-cluster` and `--redis-url` exclude each other. Errors: `Invalid`.
    static func finalizeRedisCluster(_ config: inout Config) throws(Invalid) {
        if !config.redisClusterSeeds.isEmpty && config.redisURL != nil {
            throw Invalid(description: "--redis-cluster and --redis-url exclude each other")
        }
    }
}
