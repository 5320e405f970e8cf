import Testing

@testable import Protocol

@Suite struct SocketIOPacketTests {
    private func decode(_ text: String, limits: SocketIOLimits = SocketIOLimits()) throws(SocketIOError) -> SocketIOPacket {
        try SocketIOPacket.decode(Array(text.utf8), limits: limits)
    }

    private func error(_ text: String, limits: SocketIOLimits = SocketIOLimits()) -> SocketIOError? {
        do { _ = try decode(text, limits: limits); return nil } catch { return error }
    }

    private func text(_ packet: SocketIOPacket) -> String { String(decoding: packet.encoded(), as: UTF8.self) }

    // C35 steps 2-5: CONNECT with and without auth, with a namespace.
    @Test func connect() throws {
        let plain = try decode("0")
        #expect(plain.type == .connect && plain.namespace == "/" && plain.payload == nil)
        let auth = try decode(#"0{"token":"good"}"#)
        #expect(auth.namespace == "/")  // netty-socketio#903: not a namespace named "{…}"
        #expect(auth.payload == JSONFragment(#"{"token":"good"}"#))
        let chat = try decode(#"0/chat,{"token":"good"}"#)
        #expect(chat.namespace == "/chat" && chat.payload == JSONFragment(#"{"token":"good"}"#))
        #expect(try decode("0{}").payload == JSONFragment("{}"))
        #expect(try decode("0/chat,").namespace == "/chat")
        #expect(try decode("0/chat").namespace == "/chat")
        #expect(error(#"0["x"]"#) == .invalidPayload("CONNECT payload must be an object"))
        #expect(error(#"0"tok""#) == .invalidPayload("CONNECT payload must be an object"))
        #expect(error("0{") == .invalidPayload("payload is not valid JSON"))
        #expect(error("0/chat,5{}") == .unexpectedAckID)
    }

    @Test func disconnect() throws {
        #expect(try decode("1") == SocketIOPacket(type: .disconnect))
        #expect(try decode("1/chat,") == SocketIOPacket(type: .disconnect, namespace: "/chat"))
        #expect(error("1{}") == .invalidPayload("DISCONNECT takes no payload"))
        #expect(error("13") == .unexpectedAckID)
    }

    // C36 steps 1-5: events with ack ids, id 0, namespaces, extra arguments.
    @Test func events() throws {
        let e1 = try decode(#"21["echo","a"]"#)
        #expect(e1.type == .event && e1.ackID == 1 && e1.eventName == "echo" && e1.arguments == [JSONFragment(#""a""#)])
        let zero = try decode(#"20["echo","zero"]"#)
        #expect(zero.ackID == 0)
        let chat = try decode(#"2/chat,7["echo","c"]"#)
        #expect(chat.namespace == "/chat" && chat.ackID == 7)
        let noAck = try decode(#"2["echo","noack"]"#)
        #expect(noAck.ackID == nil)
        let extra = try decode(#"25["echo","a","extra",{"x":1}]"#)
        #expect(extra.arguments == [JSONFragment(#""a""#), JSONFragment(#""extra""#), JSONFragment(#"{"x":1}"#)])
        #expect(try decode(#"2["only"]"#).arguments == [])
        #expect(try decode(#"2["esc\"aped"]"#).eventName == "esc\"aped")
    }

    @Test func badEvents() {
        #expect(error("2") == .invalidPayload("EVENT payload must be an array starting with the event name"))
        #expect(error("2[]") == .invalidPayload("EVENT payload must be an array starting with the event name"))
        #expect(error("2[1,2]") == .invalidPayload("EVENT payload must be an array starting with the event name"))
        #expect(error(#"2{"a":1}"#) == .invalidPayload("EVENT payload must be an array starting with the event name"))
        #expect(error(#"2["a",]"#) == .invalidPayload("payload is not valid JSON"))
        #expect(error(#"2["connect"]"#) == .reservedEventName("connect"))
        #expect(error(#"2["disconnect",1]"#) == .reservedEventName("disconnect"))
        #expect(error(#"2/chat,["ev"] "#) == nil)  // trailing whitespace is JSON whitespace
    }

    @Test func ackIDs() throws {
        #expect(try decode(#"29007199254740991["x"]"#).ackID == 9_007_199_254_740_991)
        #expect(error(#"29007199254740992["x"]"#) == .ackIDOutOfRange(limit: 9_007_199_254_740_991))
        #expect(error(#"299999999999999999999999["x"]"#) == .ackIDOutOfRange(limit: 9_007_199_254_740_991))
        #expect(error(#"3100["x"]"#, limits: SocketIOLimits(maxAckID: 99)) == .ackIDOutOfRange(limit: 99))
        #expect(try decode(#"3007["x"]"#).ackID == 7)
    }

    @Test func acks() throws {
        let ack = try decode(#"3/chat,12["yes"]"#)
        #expect(ack.type == .ack && ack.namespace == "/chat" && ack.ackID == 12 && ack.arguments == [JSONFragment(#""yes""#)])
        #expect(try decode("30[]").arguments == [])
        #expect(error(#"3["x"]"#) == .missingAckID)
        #expect(error("31") == .invalidPayload("ACK payload must be an array"))
        #expect(error(#"31{"a":1}"#) == .invalidPayload("ACK payload must be an array"))
    }

    // C35 step 7 and the issue's bad input.
    @Test func packetTypesAClientMayNotSend() {
        #expect(error(#"4{"message":"x"}"#) == .serverOnlyPacket)
        #expect(error("4") == .serverOnlyPacket)
        #expect(error("9") == .unknownPacketType(UInt8(ascii: "9")))
        #expect(error("7") == .unknownPacketType(UInt8(ascii: "7")))
        #expect(error("x") == .unknownPacketType(UInt8(ascii: "x")))
        #expect(error("") == .emptyPacket)
        #expect(SocketIOPacket.decodeError([0x32, 0xFF]) == .invalidUTF8)
    }

    @Test func binaryPackets() throws {
        let header = try decode(#"51-["ev",{"_placeholder":true,"num":0}]"#)
        #expect(header.type == .binaryEvent && header.attachments == 1 && header.eventName == "ev")
        let acked = try decode(#"52-/chat,3["ev",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]"#)
        #expect(acked.attachments == 2 && acked.namespace == "/chat" && acked.ackID == 3)
        let binAck = try decode(#"61-4[{"_placeholder":true,"num":0}]"#)
        #expect(binAck.type == .binaryAck && binAck.ackID == 4)
        for bad in [#"5["ev"]"#, #"5-["ev"]"#, #"50-["ev"]"#, #"511-["ev"]"#, "51", #"5x-["ev"]"#, #"51x["ev"]"#, #"500001-["ev"]"#] {
            #expect(error(bad) == .invalidAttachmentCount(limit: 10), "\(bad)")
        }
        #expect(error(#"53-["ev"]"#, limits: SocketIOLimits(maxAttachments: 2)) == .invalidAttachmentCount(limit: 2))
    }

    @Test func placeholdersMustMatchTheAttachmentCount() throws {
        let p0 = #"{"_placeholder":true,"num":0}"#
        let p1 = #"{"_placeholder":true,"num":1}"#
        #expect(
            try decode(#"52-["ev",{"nested":[%P1]},%P0]"#.replacingOccurrences(of: "%P0", with: p0).replacingOccurrences(of: "%P1", with: p1)).attachments == 2)
        for bad in [
            #"51-["ev"]"#, #"51-["ev",1]"#, "52-[\"ev\",\(p0)]", "51-[\"ev\",\(p0),\(p0)]", "52-[\"ev\",\(p0),\(p0)]",
            #"51-["ev",{"_placeholder":true,"num":1}]"#, #"51-["ev",{"_placeholder":true,"num":"0"}]"#, #"51-["ev",{"_placeholder":true}]"#,
            #"51-3[]"#.replacingOccurrences(of: "5", with: "6")
        ] {
            #expect(error(bad) == .placeholderMismatch(attachments: bad.contains("2-") ? 2 : 1), "\(bad)")
        }
        // A placeholder-looking object with _placeholder false is plain data.
        #expect(error(#"51-["ev",{"_placeholder":false,"num":0}]"#) == .placeholderMismatch(attachments: 1))
        #expect(try decode(#"2["ev",{"_placeholder":true,"num":0}]"#).attachments == 0)  // text packets are not checked
    }

    @Test func namespaces() {
        #expect(error("0/" + String(repeating: "a", count: 300) + ",") == .invalidNamespace(limit: 256))
        #expect(error("0/a\u{1}b,") == .invalidNamespace(limit: 256))
        #expect(error("0/a\u{7f},") == .invalidNamespace(limit: 256))
    }

    // C35/C36 expected server bytes.
    @Test func serverPacketEncoders() {
        #expect(text(.connectAccepted(namespace: "/", sid: "s1")) == #"0{"sid":"s1"}"#)
        #expect(text(.connectAccepted(namespace: "/chat", sid: "s2", pid: "p")) == #"0/chat,{"sid":"s2","pid":"p"}"#)
        #expect(text(.connectError(namespace: "/nope", message: "Invalid namespace")) == #"4/nope,{"message":"Invalid namespace"}"#)
        #expect(text(.connectError(namespace: "/", message: "m", data: JSONFragment(#"{"c":1}"#))) == #"4{"message":"m","data":{"c":1}}"#)
        #expect(text(.event(namespace: "/chat", name: "ask", arguments: [], ackID: 12)) == #"2/chat,12["ask"]"#)
        #expect(text(.event(namespace: "/", name: "m", arguments: [.string("lobby"), JSONFragment("{}")])) == #"2["m","lobby",{}]"#)
        #expect(text(.ack(namespace: "/", id: 0, arguments: [.string("zero")])) == #"30["zero"]"#)
        #expect(text(.ack(namespace: "/chat", id: 7, arguments: [.string("c")])) == #"3/chat,7["c"]"#)
        #expect(text(.ack(namespace: "/", id: 5, arguments: [])) == "35[]")
        #expect(text(.disconnect(namespace: "/chat")) == "1/chat,")
        #expect(text(.disconnect(namespace: "/")) == "1")
        #expect(
            text(.event(namespace: "/", name: "f", arguments: [JSONFragment(#"{"_placeholder":true,"num":0}"#)], attachments: 1))
                == #"51-["f",{"_placeholder":true,"num":0}]"#)
        #expect(
            text(.ack(namespace: "/x", id: 2, arguments: [JSONFragment(#"{"_placeholder":true,"num":0}"#)], attachments: 1))
                == #"61-/x,2[{"_placeholder":true,"num":0}]"#)
        #expect(SocketIOPacket.ack(namespace: "/", id: 1, arguments: [.string("a")]).engineIOPacket.webSocketFrame.payload == Array(#"431["a"]"#.utf8))
    }

    @Test func encodedClientPacketsDecodeBack() throws {
        for text in [
            #"0/chat,{"token":"t"}"#, #"2/chat,7["echo","c"]"#, #"20["e"]"#, "1/chat,", #"3/a,9[1,"b"]"#,
            #"52-/n,1["e",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]"#
        ] {
            #expect(String(decoding: try decode(text).encoded(), as: UTF8.self) == text)
        }
    }
}

extension SocketIOPacket {
    static func decodeError(_ bytes: [UInt8]) -> SocketIOError? {
        do { _ = try decode(bytes); return nil } catch { return error }
    }
}

@Suite struct SocketIOBinaryAssemblerTests {
    @Test func reassemblesAttachmentsInOrder() throws {
        var assembler = SocketIOBinaryAssembler()
        #expect(try assembler.receive(text: Array(#"52-["up",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]"#.utf8)) == nil)
        #expect(assembler.remainingAttachments == 2)
        #expect(try assembler.receive(binary: [1]) == nil)
        let message = try #require(try assembler.receive(binary: [2, 3]))
        #expect(message.packet.eventName == "up" && message.attachments == [[1], [2, 3]])
        #expect(assembler.remainingAttachments == 0)
        // Then text packets flow again.
        #expect(try assembler.receive(text: Array(#"2["x"]"#.utf8))?.attachments == [])
    }

    @Test func attachmentCountMismatch() throws {
        var early = SocketIOBinaryAssembler()
        _ = try early.receive(text: Array(#"52-["up",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]"#.utf8))
        _ = try early.receive(binary: [1])
        #expect(throws: SocketIOError.expectedAttachment(remaining: 1)) { try early.receive(text: Array(#"2["x"]"#.utf8)) }

        var stray = SocketIOBinaryAssembler()
        #expect(throws: SocketIOError.unexpectedAttachment) { try stray.receive(binary: [1]) }
        _ = try stray.receive(text: Array(#"61-3[{"_placeholder":true,"num":0}]"#.utf8))
        #expect(try stray.receive(binary: [7])?.packet.ackID == 3)
        #expect(throws: SocketIOError.unexpectedAttachment) { try stray.receive(binary: [1]) }
    }
}
