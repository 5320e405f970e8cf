import Runtime

/// The end-to-end check behind `/ready`: every heartbeat the node PUBLISHes a numbered canary on its own
/// control channel (`{prefix}ctl:{node}`) through the commands connection and expects it back through its
/// subscriber connection within `timeoutMilliseconds`. A canary that is missing or late means the
/// subscription died silently or a connection is wedged; the owner then marks the bus down (so `/ready`
/// answers 503) and forces a reconnect. No I/O, no clock of its own.
///
/// Gateways that only check "the socket is open" report healthy while their pub/sub is dead; this checks
/// the path room messages actually take.
public struct RedisCanary: Sendable, Equatable {
    /// A canary in flight.
    public struct Outstanding: Sendable, Equatable {
        public let sequence: UInt64
        public let sentAt: UInt64
    }

    public enum Verdict: Sendable, Equatable {
        /// Nothing outstanding, or the outstanding canary is still within its time.
        case healthy
        /// The outstanding canary is overdue by the given milliseconds since it was sent.
        case late(milliseconds: Int)
    }

    /// Milliseconds a canary may take to come back.
    public let timeoutMilliseconds: Int
    public private(set) var outstanding: Outstanding?
    /// Round trip of the last canary that came back (ms).
    public private(set) var lastRoundTripMilliseconds: Int?
    private var nextSequence: UInt64 = 1

    public init(timeoutMilliseconds: Int) {
        self.timeoutMilliseconds = max(1, timeoutMilliseconds)
    }

    /// Records a canary sent at `now`; returns its sequence number (the payload). A canary still in flight
    /// is replaced (the caller checks `verdict` first).
    public mutating func send(now: UInt64) -> UInt64 {
        let seq = nextSequence
        nextSequence &+= 1
        outstanding = Outstanding(sequence: seq, sentAt: now)
        return seq
    }

    /// A canary came back. Returns true when it was the outstanding one (older ones are ignored).
    @discardableResult
    public mutating func received(sequence: UInt64, now: UInt64) -> Bool {
        guard let o = outstanding, o.sequence == sequence else { return false }
        lastRoundTripMilliseconds = Int(now >= o.sentAt ? now - o.sentAt : 0)
        outstanding = nil
        return true
    }

    /// Whether the outstanding canary is overdue at `now`.
    public func verdict(now: UInt64) -> Verdict {
        guard let o = outstanding else { return .healthy }
        let age = now >= o.sentAt ? Int(now - o.sentAt) : 0
        return age > timeoutMilliseconds ? .late(milliseconds: age) : .healthy
    }

    /// Forgets the canary in flight (new connections).
    public mutating func reset() {
        outstanding = nil
    }
}
