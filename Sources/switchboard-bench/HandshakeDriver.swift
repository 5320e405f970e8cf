import Glibc
import Protocol
import Runtime
import SwitchboardClient

/// The `handshakes` load: `concurrency` slots, each repeatedly connecting, upgrading (the client checks the
/// 101 and `Sec-WebSocket-Accept`) and resetting the connection (SO_LINGER 0: no TIME_WAIT, so ephemeral
/// ports are not exhausted), until the deadline or until `limit` connections were started.
///
/// A handshake counts as done at the point `completion` names: the valid 101, the first text message after
/// it (the gateway's `hello`), or the answer to a `join` sent right after the 101 (`joined`).
///
/// Loop-confined (see `ClientLoop`).
final class HandshakeDriver: ClientConnectionDelegate, @unchecked Sendable {
    /// Where a handshake is done (`--until`).
    enum Completion: Sendable, Equatable {
        /// The 101 checked out.
        case upgrade
        /// The first text message after the 101 (Switchboard's `hello`).
        case firstText
        /// `{"op":"join","room":R}` (or `--join-frame`) sent right after the 101; done at the first text
        /// containing `"joined"`.
        case join(room: String)
    }

    private let bench: ClientLoop
    private let completion: Completion
    private let joinFrame: [UInt8]?
    /// Connections to start in all (nil: until the deadline).
    private let limit: Int?
    private var launched = 0
    private let endpoint: Endpoint
    private let timeoutNs: UInt64
    private var slots: [ClientConnection?]
    private var sweeper: Ticker?
    private var running = false
    private(set) var startNs: UInt64 = 0
    private(set) var deadlineNs: UInt64 = 0
    private(set) var inFlight = 0
    /// Upgrades completed before the deadline / in total.
    private(set) var completedInWindow = 0
    private(set) var completed = 0
    /// Monotonic ns of the last completed handshake.
    private(set) var lastDoneNs: UInt64 = 0
    private(set) var failed = 0
    private(set) var failures: [String: Int] = [:]
    /// Connect → valid 101.
    private(set) var latency = Histogram()

    /// `joinText`: the text frame sent after the 101 for `.join` (default: Switchboard's join of the room;
    /// another server's own, e.g. Socket.IO's namespace connect `40`, whose server answers "joined").
    init(
        bench: ClientLoop, endpoint: Endpoint, concurrency: Int, timeoutMs: Int, completion: Completion = .upgrade, limit: Int? = nil,
        joinText: String? = nil
    ) {
        self.bench = bench
        self.completion = completion
        self.limit = limit
        if case .join(let room) = completion {
            joinFrame = joinText.map { Array($0.utf8) } ?? Envelope.encode(.join(room: room, since: nil))
        } else {
            joinFrame = nil
        }
        self.endpoint = endpoint
        self.timeoutNs = UInt64(timeoutMs) * 1_000_000
        slots = Array(repeating: nil, count: concurrency)
    }

    func start(durationMs: Int) {
        startNs = monotonicNanoseconds()
        deadlineNs = startNs + UInt64(durationMs) * 1_000_000
        running = true
        sweeper = Ticker(bench, periodNanoseconds: 50_000_000) { [unowned self] _ in self.sweep() }
        for i in slots.indices { launch(i) }
    }

    var finished: Bool { inFlight == 0 }

    private func launch(_ i: Int) {
        guard running, monotonicNanoseconds() < deadlineNs, launched < limit ?? Int.max else {
            slots[i] = nil
            return
        }
        launched += 1
        let c = ClientConnection(loop: bench, delegate: self, tag: i, transportFor: endpoint)
        slots[i] = c
        inFlight += 1
        c.connect(endpoint)
    }

    private func sweep() {
        let now = monotonicNanoseconds()
        if now >= deadlineNs { running = false }
        for case let c? in slots where !c.isFinished && now - c.startedAt > timeoutNs { c.timeOut() }
        if !running && inFlight == 0 { sweeper?.cancel(); sweeper = nil }
    }

    /// Resets whatever is still in flight (after the drain wait).
    func stopAll() {
        running = false
        for case let c? in slots where !c.isFinished {
            c.reset()
            inFlight -= 1
            failed += 1
            failures["unfinished_at_end", default: 0] += 1
        }
        sweeper?.cancel()
        sweeper = nil
    }

    func clientOpened(_ client: ClientConnection) {
        switch completion {
        case .upgrade: done(client)
        case .firstText: break
        case .join: client.sendText(joinFrame!)
        }
    }

    private static let joinedKey = Array(#""joined""#.utf8)

    func clientText(_ client: ClientConnection, _ text: UnsafeRawBufferPointer) {
        switch completion {
        case .upgrade: break
        case .firstText: done(client)
        case .join:
            // The hello comes first; the answer to the join is the frame naming "joined" (or an error).
            if Self.contains(text, Self.joinedKey) {
                done(client)
            } else if Self.contains(text, Array(#""op":"error""#.utf8)) {
                clientClosed(client, .badResponse)
                client.reset()
            }
        }
    }

    private static func contains(_ text: UnsafeRawBufferPointer, _ needle: [UInt8]) -> Bool {
        guard text.count >= needle.count else { return false }
        let first = needle[0]
        return needle.withUnsafeBytes { n in
            for i in 0...(text.count - n.count) where text[i] == first && memcmp(text.baseAddress! + i, n.baseAddress!, n.count) == 0 {
                return true
            }
            return false
        }
    }

    private func done(_ client: ClientConnection) {
        let now = monotonicNanoseconds()
        completed += 1
        lastDoneNs = now
        if now <= deadlineNs { completedInWindow += 1 }
        latency.record(now - client.startedAt)
        client.reset()
        inFlight -= 1
        launch(client.tag)
    }

    func clientClosed(_ client: ClientConnection, _ cause: ConnectionEnd) {
        guard slots[client.tag] === client else { return }
        failed += 1
        failures[cause.tallyKey, default: 0] += 1
        inFlight -= 1
        launch(client.tag)
    }
}
