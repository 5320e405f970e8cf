import ClusterBus
import Foundation
import Glibc
import Runtime

/// The client address for per-IP limits and the auth backend: the TCP peer, unless the peer is a trusted
/// proxy (`--trusted-proxies`); then the right-most `X-Forwarded-For` hop that is not itself a trusted proxy
/// (each proxy appends the address it saw, so everything left of the first untrusted hop is the client's to
/// forge). A malformed hop ends the walk at the last good one. `forwardedFor` holds every
/// `X-Forwarded-For` field line in order. Addresses are returned in canonical `inet_ntop` form.
public func clientAddress(peer: String, forwardedFor: [String], trusted: TrustedProxies) -> String {
    guard !forwardedFor.isEmpty, trusted.contains(peer) else { return peer }
    var client = peer
    for hop in forwardedFor.joined(separator: ",").split(separator: ",").reversed() {
        let text = hop.trimmingCharacters(in: .whitespaces)
        guard let canonical = canonicalIPAddress(text) else { return client }
        client = canonical
        if !trusted.contains(canonical) { return client }
    }
    return client
}

/// `inet_ntop` text of an IPv4 or IPv6 address (`[…]` brackets allowed); nil when `text` is neither.
func canonicalIPAddress(_ text: String) -> String? {
    var t = text
    if t.hasPrefix("[") && t.hasSuffix("]") { t = String(t.dropFirst().dropLast()) }
    var buf = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
    var v4 = in_addr()
    if inet_pton(AF_INET, t, &v4) == 1 {
        guard inet_ntop(AF_INET, &v4, &buf, socklen_t(buf.count)) != nil else { return nil }
    } else {
        var v6 = in6_addr()
        guard inet_pton(AF_INET6, t, &v6) == 1, inet_ntop(AF_INET6, &v6, &buf, socklen_t(buf.count)) != nil else { return nil }
    }
    return String(decoding: buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
}

/// The answer to one handshake's admission.
public enum AdmissionDecision: Sendable, Equatable {
    /// Go on; the caller must `release` the IP when the connection closes.
    case admitted
    /// The IP has `--max-connections-per-ip` connections open: 429, Retry-After in seconds.
    case tooManyConnections(retryAfterSeconds: Int)
    /// The IP passed `--max-handshakes-per-ip` per second: 429, Retry-After in seconds.
    case tooManyHandshakes(retryAfterSeconds: Int)
    /// The table of tracked IPs is full (a flood from very many addresses): 503, Retry-After in seconds.
    case overCapacity(retryAfterSeconds: Int)
}

/// Per-IP admission on one node, as a value with an injected clock (monotonic ms) so tests need no sockets:
/// a count of open connections per IP and a token bucket of handshakes per second per IP (capacity = the
/// rate, so one second's worth may arrive at once). A limit of 0 disables that check.
///
/// Bounded memory: at most `maxTrackedIPs` IPs; when full, idle entries (no connection, bucket refilled) are
/// swept, at most once a second; if none can go, new IPs get `overCapacity`.
public struct AdmissionTable: Sendable {
    struct Entry: Sendable {
        var active: Int
        var tokens: Double
        var refilledAt: UInt64
    }

    /// Most concurrent connections per IP, 0 = unlimited.
    public let maxConnectionsPerIP: Int
    /// Handshakes per second per IP, 0 = unlimited.
    public let handshakesPerSecond: Int
    /// Most IPs tracked at once.
    public let maxTrackedIPs: Int
    private var entries: [String: Entry] = [:]
    private var lastSweep: UInt64 = 0

    /// A table with the given limits.
    public init(maxConnectionsPerIP: Int, handshakesPerSecond: Int, maxTrackedIPs: Int = 100_000) {
        self.maxConnectionsPerIP = max(0, maxConnectionsPerIP)
        self.handshakesPerSecond = max(0, handshakesPerSecond)
        self.maxTrackedIPs = max(1, maxTrackedIPs)
    }

    /// IPs tracked now.
    public var trackedIPs: Int { entries.count }

    /// Admits one handshake from `ip` at `now`, counting it as an open connection when admitted.
    public mutating func admit(_ ip: String, now: UInt64) -> AdmissionDecision {
        let rate = Double(handshakesPerSecond)
        var e: Entry
        if let existing = entries[ip] {
            e = existing
            if rate > 0 {
                e.tokens = min(rate, e.tokens + Double(now &- e.refilledAt) * rate / 1000)
                e.refilledAt = now
            }
        } else {
            if entries.count >= maxTrackedIPs {
                sweep(now: now)
                if entries.count >= maxTrackedIPs { return .overCapacity(retryAfterSeconds: 1) }
            }
            e = Entry(active: 0, tokens: rate, refilledAt: now)
        }
        if maxConnectionsPerIP > 0 && e.active >= maxConnectionsPerIP {
            entries[ip] = e
            return .tooManyConnections(retryAfterSeconds: 1)
        }
        if rate > 0 {
            if e.tokens < 1 {
                entries[ip] = e
                return .tooManyHandshakes(retryAfterSeconds: max(1, Int(((1 - e.tokens) / rate).rounded(.up))))
            }
            e.tokens -= 1
        }
        e.active += 1
        entries[ip] = e
        return .admitted
    }

    /// One admitted connection of `ip` closed.
    public mutating func release(_ ip: String, now: UInt64) {
        guard var e = entries[ip] else { return }
        e.active = max(0, e.active - 1)
        if e.active == 0 && handshakesPerSecond == 0 {
            entries[ip] = nil
        } else {
            entries[ip] = e
        }
    }

    private mutating func sweep(now: UInt64) {
        guard now >= lastSweep + 1000 || lastSweep == 0 else { return }
        lastSweep = now
        let rate = Double(handshakesPerSecond)
        entries = entries.filter { _, e in
            e.active > 0 || (rate > 0 && e.tokens + Double(now &- e.refilledAt) * rate / 1000 < rate)
        }
    }
}

/// The node's admission table under a lock (one short critical section per handshake and per close; never
/// touched per message). Inactive — no lock taken — when both limits are 0.
public final class Admission: Sendable {
    /// False when no per-IP limit is configured.
    public let isActive: Bool
    private let table: Lock<AdmissionTable>

    /// Admission with the given limits (0 = off).
    public init(maxConnectionsPerIP: Int, handshakesPerSecond: Int, maxTrackedIPs: Int = 100_000) {
        isActive = maxConnectionsPerIP > 0 || handshakesPerSecond > 0
        table = Lock(AdmissionTable(maxConnectionsPerIP: maxConnectionsPerIP, handshakesPerSecond: handshakesPerSecond, maxTrackedIPs: maxTrackedIPs))
    }

    /// See ``AdmissionTable/admit(_:now:)``; always `.admitted` when inactive.
    public func admit(_ ip: String) -> AdmissionDecision {
        guard isActive else { return .admitted }
        let now = monotonicMilliseconds()
        return table.withLock { $0.admit(ip, now: now) }
    }

    /// See ``AdmissionTable/release(_:now:)``.
    public func release(_ ip: String) {
        guard isActive else { return }
        let now = monotonicMilliseconds()
        table.withLock { $0.release(ip, now: now) }
    }

    /// IPs tracked now (for metrics).
    public var trackedIPs: Int { isActive ? table.withLock { $0.trackedIPs } : 0 }
}
