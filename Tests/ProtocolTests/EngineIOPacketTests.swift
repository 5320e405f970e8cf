import Testing

@testable import Protocol

@Suite struct EngineIOPacketTests {
    private func decode(_ text: String, base64: Bool = false, max: Int = 1_000_000) throws(EngineIOError) -> EngineIOPacket {
        try withBytes(of: Array(text.utf8)) { raw throws(EngineIOError) in try EngineIOPacket.decode(text: raw, base64Allowed: base64, maxPayload: max) }
    }

    private func decodeError(_ text: String, base64: Bool = false, max: Int = 1_000_000) -> EngineIOError? {
        do { _ = try decode(text, base64: base64, max: max); return nil } catch { return error }
    }

    @Test func decodesEveryTextPacketType() throws {
        #expect(try decode(#"0{"sid":"x"}"#) == .open(Array(#"{"sid":"x"}"#.utf8)))
        #expect(try decode("1") == .close)
        #expect(try decode("2") == .ping([]))
        #expect(try decode("2probe") == .ping(Array("probe".utf8)))
        #expect(try decode("3") == .pong([]))
        #expect(try decode("3probe") == .pong(Array("probe".utf8)))
        #expect(try decode("4hello é") == .message(Array("hello é".utf8)))
        #expect(try decode("4") == .message([]))
        #expect(try decode("5") == .upgrade)
        #expect(try decode("6") == .noop)
    }

    @Test func refusesBadTextPackets() {
        #expect(decodeError("") == .emptyPacket)
        #expect(decodeError("7") == .unknownPacketType(UInt8(ascii: "7")))
        #expect(decodeError("abc") == .unknownPacketType(UInt8(ascii: "a")))
        #expect(decodeError("1x") == .unexpectedData(type: UInt8(ascii: "1")))
        #expect(decodeError("5probe") == .unexpectedData(type: UInt8(ascii: "5")))
        #expect(decodeError("6 ") == .unexpectedData(type: UInt8(ascii: "6")))
        // 'b' is a base64 binary packet only inside a polling payload.
        #expect(decodeError("bAQID") == .unknownPacketType(UInt8(ascii: "b")))
        #expect(decodeError("b!!!", base64: true) == .invalidBase64)
        #expect(decodeError("4" + String(repeating: "x", count: 10), max: 10) == .payloadTooLarge(limit: 10))
        let invalid: [UInt8] = [UInt8(ascii: "4"), 0xC0, 0x80]
        #expect(throws: EngineIOError.invalidUTF8) { try withBytes(of: invalid) { raw throws(EngineIOError) in try EngineIOPacket.decode(text: raw) } }
    }

    @Test func base64BinaryInPolling() throws {
        #expect(try decode("bAQIDBA==", base64: true) == .binary([1, 2, 3, 4]))
        #expect(try decode("b", base64: true) == .binary([]))
        var out: [UInt8] = []
        EngineIOPacket.binary([1, 2, 3, 4]).appendText(to: &out)
        #expect(String(decoding: out, as: UTF8.self) == "bAQIDBA==")
    }

    @Test func webSocketFrames() throws {
        #expect(EngineIOPacket.pong(Array("probe".utf8)).webSocketFrame == (false, Array("3probe".utf8)))
        #expect(EngineIOPacket.noop.webSocketFrame == (false, Array("6".utf8)))
        #expect(EngineIOPacket.message(Array("2[\"a\"]".utf8)).webSocketFrame == (false, Array("42[\"a\"]".utf8)))
        #expect(EngineIOPacket.binary([0, 0xFF]).webSocketFrame == (true, [0, 0xFF]))  // v4: no type byte
        #expect(try withBytes(of: [9, 8]) { raw throws(EngineIOError) in try EngineIOPacket.decode(binaryFrame: raw) } == .binary([9, 8]))
        #expect(throws: EngineIOError.payloadTooLarge(limit: 1)) {
            try withBytes(of: [9, 8]) { raw throws(EngineIOError) in try EngineIOPacket.decode(binaryFrame: raw, maxPayload: 1) }
        }
    }

    @Test func textRoundTripsForEveryPacket() throws {
        let packets: [EngineIOPacket] = [
            .open(Array("{}".utf8)), .close, .ping([]), .ping(Array("probe".utf8)), .pong([]), .message(Array("2[\"x\"]".utf8)), .upgrade, .noop,
            .binary([0, 1, 254, 255])
        ]
        for packet in packets {
            var out: [UInt8] = []
            packet.appendText(to: &out)
            #expect(try decode(String(decoding: out, as: UTF8.self), base64: true) == packet)
        }
    }

    @Test func openPacketJSON() {
        let open = EngineIOOpen(sid: "abc\"", upgrades: ["websocket"], pingInterval: 25000, pingTimeout: 20000, maxPayload: 1_000_000)
        #expect(open.packet == .open(Array(#"{"sid":"abc\"","upgrades":["websocket"],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}"#.utf8)))
        let ws = EngineIOOpen(sid: "s", upgrades: [], pingInterval: 300, pingTimeout: 200, maxPayload: 100)
        #expect(ws.packet.webSocketFrame.payload == Array(#"0{"sid":"s","upgrades":[],"pingInterval":300,"pingTimeout":200,"maxPayload":100}"#.utf8))
    }
}

@Suite struct EngineIOPayloadDecoderTests {
    /// Feeds `pieces` and returns the packets, or the error with the packets delivered before it.
    private func feed(_ pieces: [[UInt8]], maxPayload: Int = 1_000_000, maxPackets: Int = 1_000) -> ([EngineIOPacket], EngineIOError?) {
        var decoder = EngineIOPayloadDecoder(maxPayload: maxPayload, maxPackets: maxPackets)
        var packets: [EngineIOPacket] = []
        do throws(EngineIOError) {
            for piece in pieces {
                try withBytes(of: piece) { raw throws(EngineIOError) in try decoder.feed(raw) { packets.append($0) } }
            }
            try decoder.finish { packets.append($0) }
            return (packets, nil)
        } catch {
            return (packets, error)
        }
    }

    private let every: [EngineIOPacket] = [
        .close, .ping([]), .pong(Array("probe".utf8)), .message(Array(#"2["ev",{"a":"é"}]"#.utf8)),
        .upgrade, .noop, .binary([1, 2, 3, 4]), .message([]), .open(Array("{}".utf8))
    ]

    @Test func everyPacketTypeWholeAndInEverySplit() {
        let body = EngineIOPayloadDecoder.encode(every)
        #expect(body.filter { $0 == 0x1E }.count == every.count - 1)
        for pieces in allSplits(body) {
            let (packets, error) = feed(pieces)
            #expect(error == nil)
            #expect(packets == every)
        }
        for packet in every {
            let single = EngineIOPayloadDecoder.encode([packet])
            for pieces in allSplits(single) { #expect(feed(pieces).0 == [packet]) }
        }
    }

    @Test func manyPacketsInOneBuffer() throws {
        let body = Array("4a\u{1e}4b\u{1e}2\u{1e}bAQ==\u{1e}4c".utf8)
        #expect(try EngineIOPayloadDecoder.decode(body) == [.message([0x61]), .message([0x62]), .ping([]), .binary([1]), .message([0x63])])
    }

    @Test func oneBadPacketAmongSeveral() {
        // Packets before the bad one are delivered by the streaming decoder; the error names the index.
        let (packets, error) = feed([Array("4a\u{1e}4b\u{1e}9x\u{1e}4c".utf8)])
        #expect(packets == [.message([0x61]), .message([0x62])])
        #expect(error == .inPayload(index: 2, .unknownPacketType(UInt8(ascii: "9"))))
        #expect(error?.underlying == .unknownPacketType(UInt8(ascii: "9")))
        // The all-or-nothing form returns none of them.
        #expect(throws: EngineIOError.inPayload(index: 1, .invalidBase64)) { try EngineIOPayloadDecoder.decode(Array("4a\u{1e}b%%\u{1e}4c".utf8)) }
        #expect(throws: EngineIOError.inPayload(index: 1, .emptyPacket)) { try EngineIOPayloadDecoder.decode(Array("4a\u{1e}\u{1e}4c".utf8)) }
        #expect(throws: EngineIOError.inPayload(index: 0, .emptyPacket)) { try EngineIOPayloadDecoder.decode([]) }
        #expect(throws: EngineIOError.inPayload(index: 1, .emptyPacket)) { try EngineIOPayloadDecoder.decode(Array("4a\u{1e}".utf8)) }
    }

    @Test func limits() {
        let body = Array(("4" + String(repeating: "x", count: 99)).utf8)
        #expect(feed([body], maxPayload: 100).1 == nil)
        #expect(feed([body + [0x1E, 0x36]], maxPayload: 101).1 == .payloadTooLarge(limit: 101))
        // The limit holds however the body is cut, before the bytes are buffered.
        for pieces in allSplits(body + [0x1E, 0x36]) { #expect(feed(pieces, maxPayload: 100).1 == .payloadTooLarge(limit: 100)) }
        #expect(feed([Array("6\u{1e}6\u{1e}6".utf8)], maxPackets: 2).1 == .tooManyPackets(limit: 2))
        #expect(feed([Array("6\u{1e}6".utf8)], maxPackets: 2).1 == nil)
    }

    @Test func invalidUTF8InAPacket() {
        #expect(feed([[UInt8(ascii: "4"), 0xFF]]).1 == .inPayload(index: 0, .invalidUTF8))
        // A multi-byte character cut between pieces is fine.
        let text = Array("4é".utf8)
        #expect(feed([Array(text[..<2]), Array(text[2...])]).0 == [.message(Array("é".utf8))])
    }
}

@Suite struct EngineIORequestTests {
    private func parse(_ target: String) throws(EngineIOHandshakeError) -> EngineIORequest {
        try EngineIORequest.parse(HTTPRequestHead(method: "GET", target: target))
    }

    private func error(_ target: String) -> EngineIOHandshakeError? {
        do { _ = try parse(target); return nil } catch { return error }
    }

    @Test func readsTransportAndSid() throws {
        #expect(try parse("/socket.io/?EIO=4&transport=polling&t=Nx1") == EngineIORequest(transport: .polling, sid: nil))
        #expect(try parse("/socket.io/?EIO=4&transport=websocket&sid=a%2Bb") == EngineIORequest(transport: .websocket, sid: "a+b"))
    }

    @Test func refusesOtherVersionsNamingTheSupportedOne() throws {
        for target in [
            "/socket.io/?EIO=3&transport=polling", "/socket.io/?EIO=5&transport=websocket", "/socket.io/?transport=polling",
            "/socket.io/?EIO=abc&transport=polling", "/socket.io/"
        ] {
            let e = try #require(error(target))
            #expect(e.code == .unsupportedProtocolVersion)
            #expect(e.status == .badRequest)
            let body = String(decoding: e.body, as: UTF8.self)
            #expect(body.hasPrefix(#"{"code":5,"message":"Unsupported protocol version","detail":""#))
            #expect(body.contains("EIO=4"))
        }
        #expect(String(decoding: error("/s/?EIO=3&transport=polling")!.body, as: UTF8.self).contains("EIO=3;"))
        let response = String(decoding: error("/s/?EIO=3")!.response.serialize(), as: UTF8.self)
        #expect(response.hasPrefix("HTTP/1.1 400 Bad Request\r\n"))
        #expect(response.contains("Content-Type: application/json\r\n"))
    }

    @Test func refusesUnknownTransportsAndEmptySid() {
        #expect(error("/s/?EIO=4")?.code == .unknownTransport)
        #expect(error("/s/?EIO=4&transport=flashsocket")?.code == .unknownTransport)
        #expect(error("/s/?EIO=4&transport=polling&sid=")?.code == .badRequest)
        #expect(EngineIOHandshakeError(.unknownSessionID, detail: "x").body == Array(#"{"code":1,"message":"Session ID unknown","detail":"x"}"#.utf8))
        #expect(EngineIOHandshakeError(.forbidden, detail: "x").status == .forbidden)
    }
}
