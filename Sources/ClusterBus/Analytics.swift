import Protocol
import Runtime

/// One analytics event accepted by a node, on its way to the analytics stream (`{prefix}analytics`).
public struct AnalyticsEvent: Sendable, Equatable {
    /// The user (`sub` of the token; the session id when auth is off).
    public let user: String
    /// The node that accepted it.
    public let node: String
    /// The room the client named, if any.
    public let room: String?
    /// The client's event name (1...200 bytes).
    public let event: String
    /// The client's `data`, compact JSON, if any.
    public let data: JSONFragment?
    /// Server wall clock when accepted, ms since the Unix epoch.
    public let serverTimeMilliseconds: UInt64

    public init(user: String, node: String, room: String?, event: String, data: JSONFragment?, serverTimeMilliseconds: UInt64) {
        self.user = user
        self.node = node
        self.room = room
        self.event = event
        self.data = data
        self.serverTimeMilliseconds = serverTimeMilliseconds
    }

    /// Stream entry fields, in this order: user, node, room (empty when none), event, data (empty when none), ts.
    public var fields: [(String, String)] {
        [
            ("user", user), ("node", node), ("room", room ?? ""), ("event", event),
            ("data", data.map { String(decoding: $0.bytes, as: UTF8.self) } ?? ""), ("ts", String(serverTimeMilliseconds))
        ]
    }
}

/// A token bucket (rate per second, burst capacity), driven by the caller's clock: one per connection in
/// the gateway, one per user in `LocalBus`; `RedisBus` runs the same rule in a Lua script shared by nodes.
public struct TokenBucket: Sendable {
    public let ratePerSecond: Double
    public let burst: Double
    private var tokens: Double
    private var updatedAt: UInt64

    /// Starts full.
    public init(ratePerSecond: Double, burst: Int, now: UInt64) {
        self.ratePerSecond = ratePerSecond
        self.burst = Double(max(1, burst))
        self.tokens = self.burst
        self.updatedAt = now
    }

    /// Takes one token at `now` (ms). Returns nil when taken, else the ms until one is available.
    public mutating func take(now: UInt64) -> Int? {
        if now > updatedAt {
            tokens = min(burst, tokens + Double(now - updatedAt) * ratePerSecond / 1000)
            updatedAt = now
        }
        if tokens >= 1 {
            tokens -= 1
            return nil
        }
        guard ratePerSecond > 0 else { return Int.max }
        return Int(((1 - tokens) * 1000 / ratePerSecond).rounded(.up))
    }
}
