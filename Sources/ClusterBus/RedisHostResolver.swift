import Foundation
import Runtime

/// Host names of cluster nodes (seeds given as `redis.internal:7000`, nodes announcing a hostname endpoint)
/// turned into numeric addresses for `RedisConnection.open`, without blocking the bus loop.
///
/// `getaddrinfo` blocks, so a name is looked up on a short-lived helper thread (`RedisLink.lookup`, the
/// standalone link's lookup: first IPv4 or IPv6 answer) and the answer handed back on the loop. An answer,
/// or a failure, is kept for `ttlMilliseconds` (default 30 s); a node whose connection fails is looked up
/// again on its next connection (`forget`), so a DNS change is followed after a failover. Concurrent
/// requests for one name share one lookup. Numeric addresses never wait.
///
/// Loop-confined.
final class RedisHostResolver {
    private let loop: EventLoop
    private let ttlMilliseconds: UInt64
    private let clock: () -> UInt64
    /// The lookup itself (blocking; runs on a helper thread). Replaceable in tests.
    var lookup: @Sendable (String) -> String? = { RedisLink.lookup(host: $0, port: 0) }
    private var answers: [String: (address: String?, at: UInt64)] = [:]
    private var waiting: [String: [() -> Void]] = [:]

    init(loop: EventLoop, ttlMilliseconds: UInt64 = 30_000, clock: @escaping () -> UInt64 = monotonicMilliseconds) {
        self.loop = loop
        self.ttlMilliseconds = ttlMilliseconds
        self.clock = clock
    }

    /// The numeric address of `host` if known now (a numeric host is its own), else nil.
    func address(of host: String) -> String? {
        if Socket.isNumericAddress(host) { return host }
        guard let a = answers[host], clock() < a.at + ttlMilliseconds else { return nil }
        return a.address
    }

    /// True when `host` needs a lookup before a connection can be opened (a name with no fresh answer).
    func needsLookup(_ host: String) -> Bool {
        if Socket.isNumericAddress(host) { return false }
        guard let a = answers[host] else { return true }
        return clock() >= a.at + ttlMilliseconds
    }

    /// Why `host` has no address (a recent failed lookup), or nil.
    func failure(of host: String) -> String? {
        guard !Socket.isNumericAddress(host), let a = answers[host], a.address == nil else { return nil }
        return "cannot resolve \(host)"
    }

    /// Looks `host` up off the loop; `then` runs on the loop once an answer (or failure) is recorded.
    func resolve(_ host: String, then: @escaping () -> Void) {
        guard needsLookup(host) else { return then() }
        waiting[host, default: []].append(then)
        guard waiting[host]?.count == 1 else { return }
        let lookup = self.lookup
        let box = WeakResolverBox(self)
        Thread.detachNewThread { [loop] in
            let address = lookup(host)
            loop.execute {
                guard let resolver = box.resolver else { return }
                resolver.answers[host] = (address, resolver.clock())
                let waiters = resolver.waiting.removeValue(forKey: host) ?? []
                for w in waiters { w() }
            }
        }
    }

    /// Drops `host`'s answer: the next connection looks it up again.
    func forget(_ host: String) { answers[host] = nil }
}

/// Carries a resolver reference into a `@Sendable` loop task (loop-confined; the task runs there).
private final class WeakResolverBox: @unchecked Sendable {
    weak var resolver: RedisHostResolver?
    init(_ resolver: RedisHostResolver) { self.resolver = resolver }
}
