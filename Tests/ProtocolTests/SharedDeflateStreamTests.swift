import Testing

@testable import Protocol

/// Room streams (RFC 7692 §7.2.2 context takeover shared by a room's members), without sockets: what a
/// peer's inflater sees when it takes a stream's frames in order, joins at a reset, or falls out of step.
@Suite struct SharedDeflateStreamTests {
    /// The payload of an unmasked server frame (one frame, RSV1 set).
    func payload(_ frame: [UInt8]) -> [UInt8] {
        #expect(frame[0] == 0xC1, "FIN + RSV1 + text")
        let code = frame[1] & 0x7F
        let header = code < 126 ? 2 : code == 126 ? 4 : 10
        return Array(frame[header...])
    }

    /// Chat messages that differ in id, user and text but share their keys (as a room's do).
    func messages(_ count: Int) -> [[UInt8]] { (0..<count).map { chatJSON(size: 200 + ($0 * 37) % 300, seed: $0 + 1) } }

    @Test func aPeerInStepInflatesEveryMessageWithOneWindow() throws {
        let stream = SharedDeflateStream()
        let peer = Inflater(noContextTakeover: false)
        var token: UInt64 = 0
        var streamBytes = 0
        var aloneBytes = 0
        for (i, message) in messages(60).enumerated() {
            let m = try #require(message.withUnsafeBytes { stream.next(opcode: .text, payload: $0) })
            #expect(m.isResetPoint == (i == 0))
            #expect(m.canInflate(after: token))
            #expect(try peer.inflate(payload(m.frame), limit: 1 << 20) == message)
            token = m.token
            streamBytes += payload(m.frame).count
            aloneBytes += Deflater(windowBits: 13).compress(message).count
        }
        // The keys repeat from message to message; compressed alone, every message pays for them again.
        #expect(streamBytes * 2 < aloneBytes, "\(streamBytes) vs \(aloneBytes)")
        #expect(stream.resets == 1)
        #expect(stream.zlibBytes < 64 * 1024)
    }

    @Test func aMessageAfterTheFirstNeedsTheEarlierOnes() throws {
        let stream = SharedDeflateStream()
        let message = chatJSON(size: 400, seed: 9)
        let first = try #require(message.withUnsafeBytes { stream.next(opcode: .text, payload: $0) })
        let second = try #require(message.withUnsafeBytes { stream.next(opcode: .text, payload: $0) })
        #expect(second.predecessor == first.token)
        #expect(!second.canInflate(after: 0))
        #expect(!second.canInflate(after: second.token))
        // A peer that did not see the first (an empty window) cannot inflate the second.
        let late = Inflater()
        let decoded = try? late.inflate(payload(second.frame), limit: 1 << 20)
        #expect(decoded != message)
    }

    @Test func aStragglerJoinsAtTheNextResetAfterTheInterval() throws {
        let stream = SharedDeflateStream(resetInterval: 4)
        let all = messages(12)
        var sent: [SharedDeflateStream.Message] = []
        for (i, message) in all.enumerated() {
            if i == 1 { stream.noteStraggler() }
            sent.append(try #require(message.withUnsafeBytes { stream.next(opcode: .text, payload: $0) }))
        }
        // Reset at 0, then not before 4 messages since it: at 4; then none asked for.
        #expect(sent.map(\.isResetPoint) == (0..<12).map { $0 == 0 || $0 == 4 })
        #expect(stream.resets == 2)
        // A newcomer with an empty window starts at the reset and stays in step.
        let newcomer = Inflater(noContextTakeover: false)
        var token: UInt64 = 0
        for i in 4..<12 {
            #expect(sent[i].canInflate(after: token))
            #expect(try newcomer.inflate(payload(sent[i].frame), limit: 1 << 20) == all[i])
            token = sent[i].token
        }
    }

    @Test func incompressibleMessageIsDeclinedAndTheStreamStartsAgain() throws {
        let stream = SharedDeflateStream()
        let chat = chatJSON(size: 300)
        _ = try #require(chat.withUnsafeBytes { stream.next(opcode: .text, payload: $0) })
        var rng = SystemRandomNumberGenerator()
        let noise = (0..<2000).map { _ in UInt8.random(in: 0...255, using: &rng) }
        #expect(noise.withUnsafeBytes { stream.next(opcode: .binary, payload: $0) } == nil)
        // The peers never saw the noise, so the next message may not refer to it: it is a reset point.
        let next = try #require(chat.withUnsafeBytes { stream.next(opcode: .text, payload: $0) })
        #expect(next.isResetPoint)
        #expect(try Inflater().inflate(payload(next.frame), limit: 1 << 20) == chat)
    }

    @Test func tokensOfTwoStreamsNeverMatch() throws {
        let a = SharedDeflateStream()
        let b = SharedDeflateStream()
        let message = chatJSON(size: 300)
        var tokens = Set<UInt64>()
        var last: (a: SharedDeflateStream.Message?, b: SharedDeflateStream.Message?) = (nil, nil)
        for _ in 0..<5 {
            let ma = try #require(message.withUnsafeBytes { a.next(opcode: .text, payload: $0) })
            let mb = try #require(message.withUnsafeBytes { b.next(opcode: .text, payload: $0) })
            #expect(tokens.insert(ma.token).inserted && tokens.insert(mb.token).inserted)
            if let pa = last.a, !mb.isResetPoint { #expect(!mb.canInflate(after: pa.token)) }
            last = (ma, mb)
        }
        #expect(!tokens.contains(0))
    }
}

@Suite struct SharedContextNegotiationTests {
    let settings = PerMessageDeflateSettings(sharedContexts: 8)

    func negotiate(_ offer: String) -> PerMessageDeflate? {
        PerMessageDeflate.negotiate(HTTPHeaders([HTTPHeader("Sec-WebSocket-Extensions", offer)]), settings: settings)
    }

    // §7.1.1.1: without the peer asking, the server may keep its context: the response leaves it out.
    @Test func browserOfferLeavesServerContextTakeoverOn() throws {
        let agreed = try #require(negotiate("permessage-deflate; client_max_window_bits"))
        #expect(!agreed.serverNoContextTakeover)
        #expect(agreed.responseValue == "permessage-deflate; client_no_context_takeover; client_max_window_bits=15")
    }

    // A peer that asks for server_no_context_takeover gets it (and only context-free frames).
    @Test func askedForNoContextTakeoverIsHonoured() throws {
        let agreed = try #require(negotiate("permessage-deflate; server_no_context_takeover"))
        #expect(agreed.serverNoContextTakeover)
        #expect(agreed.responseValue.contains("server_no_context_takeover"))
    }

    // Without room streams nothing changes: every response names server_no_context_takeover.
    @Test func withoutRoomStreamsEveryResponseNamesIt() throws {
        let agreed = try #require(
            PerMessageDeflate.negotiate(HTTPHeaders([HTTPHeader("Sec-WebSocket-Extensions", "permessage-deflate")]), settings: .init()))
        #expect(agreed.serverNoContextTakeover)
    }

    @Test func windowBitsAreClamped() {
        #expect(PerMessageDeflateSettings(sharedWindowBits: 3).sharedWindowBits == 9)
        #expect(PerMessageDeflateSettings(sharedWindowBits: 30).sharedWindowBits == 15)
    }
}
