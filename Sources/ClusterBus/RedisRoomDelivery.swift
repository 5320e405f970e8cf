import Runtime

/// One room's delivery order on one node: de-duplication by offset, and the back-fill that closes the gap
/// a subscriber outage leaves. No I/O; `RedisBus` feeds it live messages, join results and back-fill
/// results and hands what it returns to the hub, in that order.
///
/// - `cursor`: the last offset delivered to the hub, or, before the first delivery, the offset the first
///   join returned (everything after it is owed to members).
/// - After a resubscribe (`subscriptionConfirmed()` with a cursor) the room needs a back-fill. Until the
///   history read is issued (`backfillPending`, e.g. the commands connection is still reconnecting) live
///   messages are dropped: they were published before the read runs, so the read returns them. Once the
///   read is in flight (`backfilling`) live messages are held, since they may postdate it. `backfilled(...)`
///   then returns the history after the cursor first, then the held messages, skipping anything at or
///   below the cursor: members see no gap and no duplicate, in offset order.
/// - A back-fill result carries the token `beginBackfill()` issued; a stale one (from before a second
///   outage) is ignored, since applying it could skip what the newer back-fill must deliver.
/// - Offsets of another epoch (the history was reset) are not comparable: they are delivered, and the
///   back-fill of a reset history replays the new history from its start.
public struct RedisRoomDelivery: Sendable {
    public enum Phase: Sendable, Equatable {
        /// Subscription not confirmed yet (new room, or after a lost connection).
        case waiting
        /// Live messages flow straight through.
        case live
        /// Resubscribed with a cursor; the history read is not issued yet (live messages are dropped).
        case backfillPending
        /// The history read `token` is in flight (live messages are held).
        case backfilling(token: UInt64)
    }

    public private(set) var phase: Phase = .waiting
    /// Last offset handed to the hub.
    public private(set) var lastDelivered: StreamOffset?
    /// Offset of the first join while nothing was delivered yet.
    public private(set) var joinBaseline: StreamOffset?
    private var held: [BusMessage] = []
    private var nextToken: UInt64 = 0

    public init() {}

    /// Where a back-fill starts: the last delivery, else the first join's offset.
    public var cursor: StreamOffset? { lastDelivered ?? joinBaseline }

    /// Live messages held during a back-fill.
    public var heldCount: Int { held.count }

    /// A message from the subscription. Returns what to deliver now (empty while back-filling or for a duplicate).
    public mutating func live(_ message: BusMessage) -> [BusMessage] {
        switch phase {
        case .backfilling:
            held.append(message)
            return []
        case .backfillPending:
            return []
        case .live, .waiting:
            return admit(message) ? [message] : []
        }
    }

    /// A join returned `latest`: the baseline for a back-fill while nothing was delivered yet.
    public mutating func joined(latest: StreamOffset) {
        if lastDelivered == nil && joinBaseline == nil { joinBaseline = latest }
    }

    /// Redis confirmed the room's SUBSCRIBE. Returns true when a back-fill is due (the room has a cursor);
    /// false for a first subscription (joins establish the cursor).
    public mutating func subscriptionConfirmed() -> Bool {
        held.removeAll()
        guard cursor != nil else {
            phase = .live
            return false
        }
        phase = .backfillPending
        return true
    }

    /// Issues the due back-fill: the offset to read after and the token its result must carry.
    public mutating func beginBackfill() -> (since: StreamOffset, token: UInt64)? {
        guard phase == .backfillPending, let since = cursor else { return nil }
        nextToken &+= 1
        phase = .backfilling(token: nextToken)
        return (since, nextToken)
    }

    /// The subscriber connection was lost: wait for the next confirmation.
    public mutating func subscriptionLost() {
        phase = .waiting
        held.removeAll()
    }

    /// The history read for `token` returned `entries` (oldest first). Returns what to deliver, in order:
    /// history after the cursor, then the live messages held meanwhile. A stale token returns nothing.
    public mutating func backfilled(token: UInt64, entries: [BusMessage]) -> [BusMessage] {
        guard case .backfilling(let current) = phase, current == token else { return [] }
        var out: [BusMessage] = []
        out.reserveCapacity(entries.count + held.count)
        for m in entries where admit(m) { out.append(m) }
        for m in held where admit(m) { out.append(m) }
        held.removeAll()
        phase = .live
        return out
    }

    /// The history read for `token` failed (commands connection lost): the back-fill is due again.
    public mutating func backfillFailed(token: UInt64) {
        guard case .backfilling(let current) = phase, current == token else { return }
        phase = .backfillPending
        held.removeAll()
    }

    /// True (and the cursor advances) when `m` is new: after the cursor in the same epoch, or of another epoch.
    private mutating func admit(_ m: BusMessage) -> Bool {
        if let c = cursor, m.offset.isCovered(by: c) { return false }
        lastDelivered = m.offset
        return true
    }
}
