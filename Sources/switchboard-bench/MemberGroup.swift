import Glibc
import Protocol
import Runtime
import SwitchboardClient

/// What a group of connections is asked to do: open `count` WebSocket connections (at most
/// `connectConcurrency` connecting or upgrading at once), optionally join `room`.
struct GroupConfig: Sendable {
    var endpoint: Endpoint
    var count: Int
    var room: String?
    /// Count a connection ready only after the gateway's `hello` (the /ws endpoint sends one; /echo does not).
    var expectHello: Bool
    /// `.switchboard`: a join frame after the 101, ready at `joined`, messages in the envelope. `.nchan`: the
    /// upgrade is the join (the room is in the path) and each message frame is the bare published data.
    var wire: WireProtocol = .switchboard
    var connectConcurrency: Int
    var connectTimeoutMs: Int
}

/// Outcome of opening a group.
struct GroupReady: Codable, Sendable {
    var ready = 0
    var failed = 0
    var failures: [String: Int] = [:]

    mutating func merge(_ o: GroupReady) {
        ready += o.ready
        failed += o.failed
        failures.merge(o.failures, uniquingKeysWith: +)
    }
}

/// What the members of a group saw during one measured step.
struct GroupResult: Codable, Sendable {
    /// Members ready when the step began (the expected count is published × members).
    var members = 0
    /// Message frames received (duplicates included).
    var delivered = 0
    /// Distinct sequence numbers received, summed over members.
    var distinct = 0
    var lost = 0
    var duplicates = 0
    /// Messages that arrived after a higher sequence number (same member).
    var outOfOrder = 0
    /// Messages from before the step (a previous step's stragglers).
    var stale = 0
    /// Text frames that were not bench messages (errors, unexpected ops).
    var otherFrames = 0
    /// Members whose connection ended during the step, by cause.
    var closedMembers = 0
    var closeCauses: [String: Int] = [:]
    var pingsAnswered = 0
    var firstDeliveryNs: UInt64 = 0
    var lastDeliveryNs: UInt64 = 0
    var latency = Histogram()

    mutating func merge(_ o: GroupResult) {
        members += o.members
        delivered += o.delivered
        distinct += o.distinct
        lost += o.lost
        duplicates += o.duplicates
        outOfOrder += o.outOfOrder
        stale += o.stale
        otherFrames += o.otherFrames
        closedMembers += o.closedMembers
        closeCauses.merge(o.closeCauses, uniquingKeysWith: +)
        pingsAnswered += o.pingsAnswered
        if o.firstDeliveryNs != 0 { firstDeliveryNs = firstDeliveryNs == 0 ? o.firstDeliveryNs : min(firstDeliveryNs, o.firstDeliveryNs) }
        lastDeliveryNs = max(lastDeliveryNs, o.lastDeliveryNs)
        latency.merge(o.latency)
    }
}

/// A set of member connections on the bench loop: opens them (bounded concurrency, timeouts), joins the
/// room, and checks every delivered bench message: latency (now − t, same monotonic clock), and per-member
/// sequence (a bitset per member: duplicates, out-of-order, and at the end the missing ones).
/// Used by `idle` (no room: the connections just stay open) and by `fanout`/`crossnode`.
///
/// Loop-confined (see `ClientLoop`).
final class MemberGroup: ClientConnectionDelegate, @unchecked Sendable {
    private struct Member {
        var client: ClientConnection?
        var hello = false
        var joined = false
        var ready = false
        /// Counted in this step's `members`.
        var inStep = false
        var seen: [UInt64] = []
        var distinct = 0
        var maxSeq = -1
    }

    let bench: ClientLoop
    let config: GroupConfig
    private var members: [Member]
    /// Indices still to connect, and how many are connecting/upgrading now.
    private var toOpen: [Int] = []
    private var inFlight = 0
    private var sweeper: Ticker?
    private(set) var readyInfo = GroupReady()
    private var result = GroupResult()
    private var stepBase = 0
    private let joinFrame: [UInt8]?

    init(bench: ClientLoop, config: GroupConfig) {
        self.bench = bench
        self.config = config
        members = Array(repeating: Member(), count: config.count)
        joinFrame = config.wire == .switchboard ? config.room.map { Envelope.encode(.join(room: $0, since: nil)) } : nil
    }

    // MARK: - Opening

    /// Starts opening every member that is not open (all of them the first time). Loop thread.
    func open() {
        toOpen = members.indices.reversed().filter { members[$0].client == nil || members[$0].client!.isFinished }
        for i in toOpen { members[i] = Member() }
        readyInfo = GroupReady()
        readyInfo.ready = members.reduce(0) { $0 + ($1.ready ? 1 : 0) }
        if sweeper == nil {
            sweeper = Ticker(bench, periodNanoseconds: 100_000_000) { [unowned self] _ in self.sweep() }
        }
        pump()
    }

    /// True once every member is ready or failed.
    var openingDone: Bool { toOpen.isEmpty && inFlight == 0 }

    private func pump() {
        while inFlight < config.connectConcurrency, let i = toOpen.popLast() {
            let c = ClientConnection(loop: bench, delegate: self, tag: i, transportFor: config.endpoint)
            members[i].client = c
            inFlight += 1
            c.connect(config.endpoint)
        }
        if openingDone { sweeper?.cancel(); sweeper = nil }
    }

    private func sweep() {
        let limit = UInt64(config.connectTimeoutMs) * 1_000_000
        let now = monotonicNanoseconds()
        for m in members where !m.ready {
            if let c = m.client, c.state == .connecting || c.state == .handshaking, now - c.startedAt > limit { c.timeOut() }
        }
        // A member upgraded but never greeted/joined within the limit is a failure too.
        for i in members.indices where !members[i].ready {
            if let c = members[i].client, c.isOpen, now - c.openedAt > limit {
                c.reset()
                openFailed(i, "no_hello_or_joined")
            }
        }
    }

    private func openFailed(_ i: Int, _ key: String) {
        readyInfo.failed += 1
        readyInfo.failures[key, default: 0] += 1
        inFlight -= 1
        pump()
    }

    private func checkReady(_ i: Int) {
        let m = members[i]
        guard !m.ready, m.client?.isOpen == true,
            m.hello || !config.expectHello, m.joined || config.room == nil
        else { return }
        members[i].ready = true
        readyInfo.ready += 1
        inFlight -= 1
        pump()
    }

    // MARK: - ClientConnectionDelegate

    func clientOpened(_ client: ClientConnection) {
        if let joinFrame { client.sendText(joinFrame) }
        if config.wire == .nchan { members[client.tag].joined = true }
        checkReady(client.tag)
    }

    func clientText(_ client: ClientConnection, _ text: UnsafeRawBufferPointer) {
        if let (t, s) = config.wire == .nchan ? FrameScan.benchPayload(text) : FrameScan.benchMessage(text) {
            delivered(client.tag, t: t, s: s)
            return
        }
        let i = client.tag
        guard config.wire == .switchboard else { result.otherFrames += 1; return }
        guard let m = Envelope.decodeServer(text) else { result.otherFrames += 1; return }
        switch m.op {
        case "hello":
            members[i].hello = true
            checkReady(i)
        case "joined" where m.room == config.room:
            members[i].joined = true
            checkReady(i)
        default:
            result.otherFrames += 1
        }
    }

    func clientClosed(_ client: ClientConnection, _ cause: ConnectionEnd) {
        let i = client.tag
        guard members[i].client === client else { return }
        if members[i].ready {
            members[i].ready = false
            if members[i].inStep {
                result.closedMembers += 1
                result.closeCauses[cause.tallyKey, default: 0] += 1
            }
        } else {
            openFailed(i, cause.tallyKey)
        }
    }

    // MARK: - Measuring

    @inline(__always)
    private func delivered(_ i: Int, t: UInt64, s: Int) {
        let now = monotonicNanoseconds()
        result.delivered += 1
        if result.firstDeliveryNs == 0 { result.firstDeliveryNs = now }
        result.lastDeliveryNs = now
        result.latency.record(now > t ? now - t : 0)
        let k = s - stepBase
        guard k >= 0 else { result.stale += 1; return }
        let word = k >> 6
        let bit = UInt64(1) << UInt64(k & 63)
        if word >= members[i].seen.count {
            members[i].seen.append(contentsOf: repeatElement(0, count: max(word + 1 - members[i].seen.count, members[i].seen.count)))
        }
        if members[i].seen[word] & bit != 0 {
            result.duplicates += 1
            return
        }
        members[i].seen[word] |= bit
        members[i].distinct += 1
        if s < members[i].maxSeq { result.outOfOrder += 1 } else { members[i].maxSeq = s }
    }

    /// Starts a measured step: sequence numbers from `base` on count; everything else is reset.
    func beginStep(base: Int) {
        stepBase = base
        result = GroupResult()
        for i in members.indices {
            members[i].seen.removeAll(keepingCapacity: true)
            members[i].distinct = 0
            members[i].maxSeq = base - 1
            members[i].inStep = members[i].ready
            if members[i].ready { result.members += 1 }
        }
    }

    /// True when every member still open has every one of the `published` messages of this step.
    func allDelivered(published: Int) -> Bool {
        for m in members where m.inStep && m.ready && m.distinct < published { return false }
        return true
    }

    /// The step's figures; `lost` counts, per member of the step, the published messages it never got.
    func stepResult(published: Int) -> GroupResult {
        var r = result
        r.lost = 0
        r.distinct = 0
        r.pingsAnswered = 0
        for m in members {
            r.pingsAnswered += m.client?.pingsAnswered ?? 0
            guard m.inStep else { continue }
            r.distinct += m.distinct
            r.lost += max(0, published - m.distinct)
        }
        return r
    }

    /// Resets every connection (RST). Loop thread.
    func closeAll() {
        sweeper?.cancel()
        sweeper = nil
        toOpen = []
        for i in members.indices {
            members[i].client?.reset()
            members[i].client = nil
            members[i].ready = false
        }
    }
}
