import Runtime

/// The subscriber connection's channel table: what the node wants versus what Redis confirmed, with
/// SUBSCRIBE / UNSUBSCRIBE batched per loop tick. No I/O: `flush()` returns the channels to send.
///
/// Per channel: `unsubscribed → subscribing → subscribed → unsubscribing → unsubscribed`. A channel is
/// never sent a SUBSCRIBE while its UNSUBSCRIBE is unconfirmed (and vice versa): the change waits for the
/// confirmation. That keeps the table's view consistent with the server's (an unsubscribe confirmation
/// arriving after a re-subscribe would otherwise end the new subscription's state) and makes a
/// leave-then-join within one tick cost nothing at all.
///
/// On a lost connection every state resets to `unsubscribed` while the wanted set is kept; the next
/// `connectionReady()` + `flush()` resubscribes everything the node still wants.
public struct RedisSubscriptions: Sendable {
    public enum ChannelState: Sendable, Equatable { case unsubscribed, subscribing, subscribed, unsubscribing }

    /// What `subscribed(_:)` learned.
    public enum Confirmation: Sendable, Equatable {
        /// The channel is live and wanted: deliveries may start.
        case active
        /// Confirmed, but the node no longer wants it: an UNSUBSCRIBE is due at the next flush.
        case unwanted
        /// Not a channel we asked for (ignored).
        case unexpected
    }

    private var wanted: Set<String> = []
    private var states: [String: ChannelState] = [:]
    private var dirty: [String] = []
    private var dirtySet: Set<String> = []
    /// True while the subscriber connection is ready; flushes return nothing otherwise.
    public private(set) var connected = false

    public init() {}

    /// Channels the node wants (in no particular order).
    public var wantedChannels: Set<String> { wanted }

    /// The confirmed state of `channel`.
    public func state(of channel: String) -> ChannelState { states[channel] ?? .unsubscribed }

    /// True when `channel` is wanted and confirmed.
    public func isActive(_ channel: String) -> Bool { wanted.contains(channel) && states[channel] == .subscribed }

    /// True when there is something for `flush()` to send.
    public var needsFlush: Bool { connected && !dirty.isEmpty }

    /// The node wants `channel`. Returns true when a flush is needed.
    @discardableResult
    public mutating func want(_ channel: String) -> Bool {
        guard wanted.insert(channel).inserted else { return false }
        markDirty(channel)
        return connected
    }

    /// The node no longer wants `channel`. Returns true when a flush is needed.
    @discardableResult
    public mutating func unwant(_ channel: String) -> Bool {
        guard wanted.remove(channel) != nil else { return false }
        markDirty(channel)
        return connected
    }

    /// The commands to send now: channels to SUBSCRIBE and to UNSUBSCRIBE (each in the order they changed).
    public mutating func flush() -> (subscribe: [String], unsubscribe: [String]) {
        guard connected, !dirty.isEmpty else { return ([], []) }
        var sub: [String] = []
        var unsub: [String] = []
        let pending = dirty
        dirty.removeAll(keepingCapacity: true)
        dirtySet.removeAll(keepingCapacity: true)
        for ch in pending {
            let want = wanted.contains(ch)
            switch (states[ch] ?? .unsubscribed, want) {
            case (.unsubscribed, true):
                states[ch] = .subscribing
                sub.append(ch)
            case (.subscribed, false):
                states[ch] = .unsubscribing
                unsub.append(ch)
            case (.subscribing, _), (.unsubscribing, _):
                break  // re-evaluated when the confirmation arrives
            case (.unsubscribed, false), (.subscribed, true):
                break
            }
        }
        return (sub, unsub)
    }

    /// Redis confirmed a SUBSCRIBE.
    public mutating func subscribed(_ channel: String) -> Confirmation {
        guard states[channel] == .subscribing else { return .unexpected }
        states[channel] = .subscribed
        if wanted.contains(channel) { return .active }
        markDirty(channel)
        return .unwanted
    }

    /// Redis confirmed an UNSUBSCRIBE. Returns true when the channel is wanted again (a SUBSCRIBE is due at
    /// the next flush).
    @discardableResult
    public mutating func unsubscribed(_ channel: String) -> Bool {
        guard states[channel] != nil else { return false }
        states[channel] = nil
        if wanted.contains(channel) {
            markDirty(channel)
            return true
        }
        return false
    }

    /// The subscriber connection is ready: every wanted channel is due.
    public mutating func connectionReady() {
        connected = true
        states.removeAll()
        dirty.removeAll()
        dirtySet.removeAll()
        for ch in wanted.sorted() { markDirty(ch) }
    }

    /// The subscriber connection is gone: nothing is subscribed any more.
    public mutating func connectionLost() {
        connected = false
        states.removeAll()
        dirty.removeAll()
        dirtySet.removeAll()
    }

    private mutating func markDirty(_ channel: String) {
        if dirtySet.insert(channel).inserted { dirty.append(channel) }
    }
}
