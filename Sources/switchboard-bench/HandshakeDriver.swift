import Glibc
import Runtime
import SwitchboardClient

/// The `handshakes` load: `concurrency` slots, each repeatedly connecting, upgrading (the client checks the
/// 101 and `Sec-WebSocket-Accept`) and resetting the connection (SO_LINGER 0: no TIME_WAIT, so ephemeral
/// ports are not exhausted), until the deadline.
///
/// Loop-confined (see `ClientLoop`).
final class HandshakeDriver: ClientConnectionDelegate, @unchecked Sendable {
    private let bench: ClientLoop
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
    private(set) var failed = 0
    private(set) var failures: [String: Int] = [:]
    /// Connect → valid 101.
    private(set) var latency = Histogram()

    init(bench: ClientLoop, endpoint: Endpoint, concurrency: Int, timeoutMs: Int) {
        self.bench = bench
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
        guard running, monotonicNanoseconds() < deadlineNs else {
            slots[i] = nil
            return
        }
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
        let now = monotonicNanoseconds()
        completed += 1
        if now <= deadlineNs { completedInWindow += 1 }
        latency.record(now - client.startedAt)
        client.reset()
        inFlight -= 1
        launch(client.tag)
    }

    func clientText(_ client: ClientConnection, _ text: UnsafeRawBufferPointer) {}

    func clientClosed(_ client: ClientConnection, _ cause: ConnectionEnd) {
        guard slots[client.tag] === client else { return }
        failed += 1
        failures[cause.tallyKey, default: 0] += 1
        inFlight -= 1
        launch(client.tag)
    }
}
