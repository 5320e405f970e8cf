import Glibc
import Protocol
import Runtime
import SwitchboardClient

/// How the publisher paces itself.
enum PublishMode: Sendable, CustomStringConvertible {
    /// Closed loop: at most `n` publishes un-acked.
    case window(Int)
    /// Open loop: `perSecond` publishes, paced by a timerfd (at most `maxInflight` un-acked).
    case rate(Double)

    var description: String {
        switch self {
        case .window(let n): "window \(n)"
        case .rate(let r): "rate \(Int(r))/s"
        }
    }
}

/// What the publisher did during one step.
struct PublishStats: Sendable {
    var sent = 0
    var acked = 0
    var errors = 0
    var errorCodes: [String: Int] = [:]
    /// Publishes that were due (rate mode) but held back because `maxInflight` were un-acked.
    var heldBack = 0
    var firstSendNs: UInt64 = 0
    var lastSendNs: UInt64 = 0
    var lastAckNs: UInt64 = 0
    var inflight = 0
    /// Publish → ack round trip.
    var ackLatency = Histogram()
}

/// The one publisher: publishes `{"op":"publish","room":R,"data":{"t":<send ns>,"s":<seq>,"p":"…"},"id":<seq>}`
/// and counts acks. Sequence numbers grow across steps so a straggler of an earlier step is recognizable.
/// With an `httpPath` (nchan) it POSTs the `data` object alone to that path instead, pipelined on one
/// keep-alive connection (`HTTPPublishConnection`), and each response is the ack of the oldest unanswered POST.
///
/// Loop-confined (see `ClientLoop`).
final class Publisher: ClientConnectionDelegate, @unchecked Sendable {
    let bench: ClientLoop
    private let endpoint: Endpoint
    private let room: String
    private let size: Int
    private let padding: [UInt8]
    private let maxInflight: Int
    private let expectHello: Bool
    private(set) var client: ClientConnection?
    /// nchan's publisher location (`/pub/<room>`); nil for Switchboard's WebSocket publish.
    private let httpPath: String?
    private var http: HTTPPublishConnection?
    /// Sequence number the next HTTP response answers.
    private var nextAnswer = 0
    private(set) var ready = false
    private(set) var closedCause: ConnectionEnd?
    /// Next sequence number.
    private(set) var seq = 0
    private(set) var stats = PublishStats()
    private var mode = PublishMode.window(1)
    private var running = false
    private var ticker: Ticker?
    private var stepStartNs: UInt64 = 0
    private var sendTimes: [UInt64]
    private let sendTimesMask: Int

    /// `size`: bytes of the `data` object as published (the `p` padding makes up the difference; at least
    /// about 30 bytes for `t`, `s` and the punctuation).
    init(bench: ClientLoop, endpoint: Endpoint, room: String, size: Int, maxInflight: Int, expectHello: Bool, httpPath: String? = nil) {
        self.bench = bench
        self.httpPath = httpPath
        self.endpoint = endpoint
        self.room = room
        self.size = size
        self.padding = Array(repeating: UInt8(ascii: "x"), count: max(0, size))
        self.maxInflight = max(1, maxInflight)
        self.expectHello = expectHello
        var ring = 1
        while ring < self.maxInflight * 2 { ring <<= 1 }
        sendTimes = Array(repeating: 0, count: ring)
        sendTimesMask = ring - 1
    }

    /// Connects (again, after a close: the old connection is dropped). Loop thread.
    func connect() {
        client?.reset()
        http?.reset()
        closedCause = nil
        ready = false
        if let httpPath {
            let h = HTTPPublishConnection(loop: bench, delegate: self, endpoint: endpoint, path: httpPath)
            http = h
            nextAnswer = seq
            h.connect(endpoint, timeoutMs: 5000)
            return
        }
        let c = ClientConnection(loop: bench, delegate: self, tag: 0, transportFor: endpoint)
        client = c
        c.connect(endpoint)
    }

    // MARK: - Steps

    /// Starts publishing in `mode` with fresh step statistics. Loop thread.
    func start(_ mode: PublishMode) {
        self.mode = mode
        stats = PublishStats()
        running = true
        stepStartNs = monotonicNanoseconds()
        switch mode {
        case .window(let n):
            for _ in 0..<max(1, n) where running { publish() }
        case .rate(let r):
            // Up to 1,000 ticks/s; faster rates send the due publishes in small bursts.
            let period = UInt64(max(1e9 / max(r, 0.001), 1e6))
            ticker = Ticker(bench, periodNanoseconds: period) { [unowned self] _ in self.paced(rate: r) }
            paced(rate: r)
        }
    }

    /// Stops sending (acks keep being counted). Loop thread.
    func stop() {
        running = false
        ticker?.cancel()
        ticker = nil
    }

    /// The publishing connection is up (WebSocket or HTTP).
    private var linkOpen: Bool { http?.isOpen ?? client?.isOpen ?? false }

    private func paced(rate: Double) {
        guard running, linkOpen else { return }
        let due = Int(Double(monotonicNanoseconds() - stepStartNs) * rate / 1e9) + 1 - stats.sent - stats.heldBack
        guard due > 0 else { return }
        let room = maxInflight - stats.inflight
        let n = min(due, room)
        if n < due { stats.heldBack += due - n }
        for _ in 0..<max(0, n) { publish() }
        if let http { if http.queuedBytes > 0 && !http.isWriteBlocked { http.flushNow() } } else { client?.uncork() }
    }

    private func publish() {
        guard linkOpen else { running = false; return }
        let now = monotonicNanoseconds()
        let s = seq
        seq += 1
        var text: [UInt8] = []
        text.reserveCapacity(96 + room.utf8.count + padding.count)
        if http == nil {
            text.append(contentsOf: #"{"op":"publish","room":"#.utf8)
            text.append(UInt8(ascii: "\""))
            text.append(contentsOf: room.utf8)
            text.append(contentsOf: #"","data":"#.utf8)
        }
        text.append(contentsOf: #"{"t":"#.utf8)
        appendDecimal(now, to: &text)
        text.append(contentsOf: #","s":"#.utf8)
        appendDecimal(UInt64(s), to: &text)
        text.append(contentsOf: #","p":""#.utf8)
        // data = {"t":<t>,"s":<s>,"p":"<pad>"}: 18 bytes of punctuation and keys plus the two numbers.
        let pad = max(0, size - 18 - decimalDigits(now) - decimalDigits(UInt64(s)))
        text.append(contentsOf: padding[0..<pad])
        text.append(contentsOf: #""}"#.utf8)
        if http == nil {
            text.append(contentsOf: #","id":"#.utf8)
            appendDecimal(UInt64(s), to: &text)
            text.append(UInt8(ascii: "}"))
        }
        sendTimes[s & sendTimesMask] = now
        if stats.firstSendNs == 0 { stats.firstSendNs = now }
        stats.lastSendNs = now
        stats.sent += 1
        stats.inflight += 1
        if let http { http.post(text) } else { client?.sendText(text) }
    }

    private func decimalDigits(_ v: UInt64) -> Int {
        var n = 1
        var x = v
        while x >= 10 { x /= 10; n += 1 }
        return n
    }

    private func appendDecimal(_ v: UInt64, to out: inout [UInt8]) {
        if v == 0 { out.append(0x30); return }
        var buf: (UInt64, UInt64, UInt64) = (0, 0, 0)
        withUnsafeMutableBytes(of: &buf) { raw in
            var i = raw.count
            var x = v
            while x > 0 {
                i -= 1
                raw[i] = UInt8(x % 10) + 0x30
                x /= 10
            }
            out.append(contentsOf: raw[i...])
        }
    }

    // MARK: - ClientConnectionDelegate

    func clientOpened(_ client: ClientConnection) {
        if !expectHello { ready = true }
    }

    func clientText(_ client: ClientConnection, _ text: UnsafeRawBufferPointer) {
        if let id = FrameScan.ackID(text) {
            acked(id, error: nil)
            return
        }
        if FrameScan.isMessage(text) { return }  // the publisher is not a member; ignore if it were
        guard let m = Envelope.decodeServer(text) else { return }
        switch m.op {
        case "hello":
            ready = true
        case "error":
            if let idText = m.id?.description, let id = Int(idText) {
                acked(id, error: m.code ?? "unknown")
            } else {
                stats.errorCodes[m.code ?? "unknown", default: 0] += 1
            }
        default:
            break
        }
    }

    private func acked(_ id: Int, error: String?) {
        let now = monotonicNanoseconds()
        stats.inflight = max(0, stats.inflight - 1)
        if let error {
            stats.errors += 1
            stats.errorCodes[error, default: 0] += 1
        } else {
            stats.acked += 1
            stats.lastAckNs = now
            if id >= 0 && seq - id <= sendTimesMask { stats.ackLatency.record(now - min(now, sendTimes[id & sendTimesMask])) }
        }
        if running, case .window = mode { publish() }
    }

    func clientClosed(_ client: ClientConnection, _ cause: ConnectionEnd) { linkClosed(cause) }

    private func linkClosed(_ cause: ConnectionEnd) {
        closedCause = cause
        ready = false
        running = false
        ticker?.cancel()
        ticker = nil
    }

    func close() {
        stop()
        client?.reset()
        client = nil
        http?.reset()
        http = nil
    }
}

extension Publisher: HTTPPublishDelegate {
    func httpOpened() { ready = true }

    func httpAnswered(status: Int) {
        let id = nextAnswer
        nextAnswer += 1
        acked(id, error: (200..<300).contains(status) ? nil : "http_\(status)")
    }

    func httpClosed(_ cause: ConnectionEnd) { linkClosed(cause) }
}
