/// The server → client side of one Engine.IO long-polling session, sans I/O: packets wait here
/// until the client's GET collects them, joined by 0x1E (socketio/engine.io-protocol, revision 4,
/// "HTTP long-polling").
///
/// At most one GET is held at a time: a second one while the first is pending is a protocol
/// error (the reference server closes the session; answer 400, code 3). A held GET is answered as
/// soon as a packet is queued; the heartbeat's ping (every `pingInterval`) guarantees it returns.
/// The queue is bounded by `maxQueuedBytes` of encoded text: ``enqueue(_:)`` reports an overflow
/// instead of growing, and the owner closes the session (a slow consumer, like the room
/// protocol's 1008) so the client reconnects and recovers.
public struct EngineIOPollingOutbox: Sendable {
    /// What to do with a GET.
    public enum PollResult: Equatable, Sendable {
        /// Answer now with this body (the queued packets, now removed).
        case respond([UInt8])
        /// Nothing queued: hold the request until ``enqueue(_:)`` says `respond`.
        case hold
        /// A GET is already held: answer this one 400 and close the session.
        case duplicatePoll
    }

    /// What ``enqueue(_:)`` did.
    public enum EnqueueResult: Equatable, Sendable {
        /// A GET was held: answer it now with this body.
        case respond([UInt8])
        /// Queued for the next GET.
        case queued
        /// Over `maxQueuedBytes`: not queued; close the session.
        case overflow
    }

    /// Bytes of encoded packets (separators included) allowed to wait; default 1 MiB.
    public let maxQueuedBytes: Int
    /// Whether a GET is being held.
    public private(set) var pollHeld = false
    /// Bytes waiting.
    public private(set) var queuedBytes = 0
    private var queue: [EngineIOPacket] = []

    /// An empty outbox holding at most `maxQueuedBytes` of encoded packets.
    public init(maxQueuedBytes: Int = 1 << 20) { self.maxQueuedBytes = maxQueuedBytes }

    /// A GET arrived.
    public mutating func poll() -> PollResult {
        if pollHeld { return .duplicatePoll }
        if queue.isEmpty {
            pollHeld = true
            return .hold
        }
        return .respond(takeBody())
    }

    /// The held GET went away (its connection closed) without an answer.
    public mutating func pollAbandoned() { pollHeld = false }

    /// A packet for the client.
    public mutating func enqueue(_ packet: EngineIOPacket) -> EnqueueResult {
        let size = Self.encodedSize(packet) + (queue.isEmpty ? 0 : 1)
        guard queuedBytes + size <= maxQueuedBytes else { return .overflow }
        queue.append(packet)
        queuedBytes += size
        guard pollHeld else { return .queued }
        pollHeld = false
        return .respond(takeBody())
    }

    /// Removes and returns everything queued, e.g. to send on the WebSocket after an upgrade.
    public mutating func takeAll() -> [EngineIOPacket] {
        defer {
            queue = []
            queuedBytes = 0
        }
        return queue
    }

    private mutating func takeBody() -> [UInt8] {
        EngineIOPayloadDecoder.encode(takeAll())
    }

    /// Bytes of the packet's text form in a payload (binary: `b` + base64).
    static func encodedSize(_ packet: EngineIOPacket) -> Int {
        switch packet {
        case .open(let d), .ping(let d), .pong(let d), .message(let d): 1 + d.count
        case .close, .upgrade, .noop: 1
        case .binary(let d): 1 + (d.count + 2) / 3 * 4
        }
    }
}
