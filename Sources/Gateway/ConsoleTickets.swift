import Runtime

/// One-use tickets that let the console's page tail rooms over the public WebSocket port when
/// authentication is on: the page holds no token of its own (and must not hold the API key), so a logged-in
/// console session asks the admin port for a ticket (`POST /console/ticket`, cookie + CSRF token) and sends
/// it as its token (`{"op":"auth","token":"sbconsole.…"}`). The node that issued it redeems it once, within
/// ``redeemWindowMs``, for an identity that may join and ask presence of every room and publish to none
/// (the console publishes through the server API), nor send `rpc` or `analytics` (``AuthIdentity/tailOnly``); the identity lasts ``identityLifetimeMs``, after which
/// the page renews with a new ticket (`token_expiring`, as any client).
///
/// Tickets are 32 bytes from the system CSPRNG, hex-encoded after ``prefix``; at most ``capacity`` are
/// outstanding (the oldest is dropped past it). Node-local: the page's WebSocket URL is the same node's
/// public port (`/console/session`'s `ws`).
final class ConsoleTickets: Sendable {
    /// The process's tickets (one node per process).
    static let shared = ConsoleTickets()
    /// What marks a token as a console ticket rather than a JWT or a backend credential.
    static let prefix = "sbconsole."
    /// Milliseconds a ticket may wait before it is redeemed.
    static let redeemWindowMs: UInt64 = 60_000
    /// Milliseconds the identity of a redeemed ticket lasts.
    static let identityLifetimeMs: UInt64 = 15 * 60_000
    static let capacity = 256
    /// The user name of console connections (in logs and presence).
    static let user = "console"

    private let table = Lock<[String: UInt64]>([:])

    /// A new ticket, valid for ``redeemWindowMs`` from `now` (monotonic ms).
    func issue(now: UInt64) -> String {
        let ticket = Self.prefix + ConsoleSessions.token()
        table.withLock { t in
            t = t.filter { $0.value > now }
            if t.count >= Self.capacity, let oldest = t.min(by: { $0.value < $1.value }) { t[oldest.key] = nil }
            t[ticket] = now + Self.redeemWindowMs
        }
        return ticket
    }

    /// The console identity for a live ticket, which is then spent; nil for an unknown, spent or expired one.
    /// `wallNowMs`: Unix ms, for the identity's expiry.
    func redeem(_ ticket: String, now: UInt64, wallNowMs: UInt64) -> AuthIdentity? {
        let live = table.withLock { t -> Bool in
            guard let expires = t.removeValue(forKey: ticket) else { return false }
            return expires > now
        }
        guard live else { return nil }
        return AuthIdentity(
            user: Self.user, rooms: ["**"], publish: [], expiresAt: Double(wallNowMs + Self.identityLifetimeMs) / 1000,
            tailOnly: true)
    }
}
