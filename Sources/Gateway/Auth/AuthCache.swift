import COpenSSL
import Runtime

/// The cache key of a token: its SHA-256 (so the cache never holds tokens and every key is 32 bytes).
public struct AuthCacheKey: Hashable, Sendable {
    let a: UInt64, b: UInt64, c: UInt64, d: UInt64

    /// SHA-256 of the token's UTF-8 bytes (OpenSSL `EVP_Digest`).
    public init(token: String) {
        var digest = [UInt8](repeating: 0, count: 32)
        var n: UInt32 = 0
        var t = token
        t.withUTF8 { bytes in _ = EVP_Digest(bytes.baseAddress, bytes.count, &digest, &n, Digests.sha256, nil) }
        func word(_ i: Int) -> UInt64 { digest[i..<(i + 8)].reduce(0) { $0 << 8 | UInt64($1) } }
        a = word(0); b = word(8); c = word(16); d = word(24)
    }
}

/// Successful auth backend answers by token, for a short TTL, so a reconnect storm (a deploy, a network
/// blip) costs the backend one call per token per TTL instead of one per connection. Failures are never
/// cached. A value; the node keeps it under its auth lock.
///
/// Bounded: at most `capacity` entries; inserting beyond evicts the oldest insertion (FIFO, which for a
/// fixed TTL is also the soonest to expire). An entry lives `ttlMs`, or until the identity's own expiry if
/// that is sooner.
public struct AuthCache: Sendable {
    /// Milliseconds an answer stays valid (`--auth-cache-ttl`, default 10 s; 0 disables the cache).
    public let ttlMs: Int
    /// Most entries kept (`--auth-cache-size`, default 10,000).
    public let capacity: Int
    private var entries: [AuthCacheKey: (identity: AuthIdentity, expires: UInt64, serial: UInt64)] = [:]
    private var order: [(key: AuthCacheKey, serial: UInt64)] = []
    private var orderHead = 0
    private var serial: UInt64 = 0

    /// An empty cache.
    public init(ttlMs: Int, capacity: Int) {
        self.ttlMs = max(0, ttlMs)
        self.capacity = max(1, capacity)
    }

    /// Entries held (some may have expired but not been evicted yet).
    public var count: Int { entries.count }

    /// The identity cached for `key` if it has not expired at `now` (monotonic ms).
    public mutating func get(_ key: AuthCacheKey, now: UInt64) -> AuthIdentity? {
        guard let e = entries[key] else { return nil }
        if now >= e.expires {
            entries[key] = nil
            return nil
        }
        return e.identity
    }

    /// Caches `identity` at `now` (monotonic ms) for the TTL, cut to `wallNowMs`→`identity.expiresAt` when sooner.
    public mutating func put(_ key: AuthCacheKey, _ identity: AuthIdentity, now: UInt64, wallNowMs: UInt64) {
        guard ttlMs > 0 else { return }
        var ttl = UInt64(ttlMs)
        if let exp = identity.expiresAt {
            let left = exp * 1000 - Double(wallNowMs)
            guard left > 0 else {
                entries[key] = nil  // a newer answer that is already expired supersedes an older entry
                return
            }
            ttl = min(ttl, UInt64(left))
        }
        serial &+= 1
        entries[key] = (identity, now + ttl, serial)
        order.append((key, serial))
        while entries.count > capacity, orderHead < order.count {
            let (k, s) = order[orderHead]
            orderHead += 1
            if entries[k]?.serial == s { entries[k] = nil }
        }
        if order.count - orderHead > 2 * capacity + 16 {
            // Re-insertions of live keys leave stale order records behind: keep only the live ones.
            order = order[orderHead...].filter { entries[$0.key]?.serial == $0.serial }
            orderHead = 0
        } else if orderHead > 1024 && orderHead * 2 > order.count {
            order.removeFirst(orderHead)
            orderHead = 0
        }
    }
}
