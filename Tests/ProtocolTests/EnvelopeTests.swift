import Testing

@testable import Protocol

@Suite struct EnvelopeTests {
    func decode(_ json: String) throws(EnvelopeError) -> ClientRequest {
        try Array(json.utf8).withUnsafeBytes { raw in Result { () throws(EnvelopeError) in try Envelope.decode(raw) } }.get()
    }

    func failure(_ json: String) -> EnvelopeError? {
        do { _ = try decode(json); return nil } catch { return error }
    }

    // MARK: each op

    @Test func ops() throws {
        #expect(try decode(#"{"op":"auth","token":"t0k"}"#) == .auth(token: "t0k"))
        #expect(try decode(#"{"op":"join","room":"lobby"}"#) == .join(room: "lobby", since: nil))
        #expect(try decode(#"{"op":"join","room":"lobby","since":"1700-0"}"#) == .join(room: "lobby", since: "1700-0"))
        #expect(try decode(#"{"op":"join","room":"lobby","since":null}"#) == .join(room: "lobby", since: nil))
        #expect(try decode(#"{"op":"leave","room":"lobby"}"#) == .leave(room: "lobby"))
        #expect(
            try decode(#"{"op":"publish","room":"lobby","data":{"text":"hi"}}"#)
                == .publish(room: "lobby", data: JSONFragment(#"{"text":"hi"}"#), id: nil))
        #expect(
            try decode(#"{"op":"publish","room":"r","data":"s","id":"req-1"}"#)
                == .publish(room: "r", data: JSONFragment(#""s""#), id: JSONFragment(#""req-1""#)))
        #expect(
            try decode(#"{"op":"publish","room":"r","data":null,"id":42}"#)
                == .publish(room: "r", data: .null, id: JSONFragment("42")))
        #expect(try decode(#"{"op":"presence","room":"r"}"#) == .presence(room: "r"))
        #expect(try decode(#"{"op":"analytics","event":"click"}"#) == .analytics(event: "click", data: nil))
        #expect(try decode(#"{"op":"analytics","event":"click","data":[1,true]}"#) == .analytics(event: "click", data: JSONFragment("[1,true]")))
        #expect(try decode(#"{"op":"analytics","event":"view","room":"r1"}"#) == .analytics(event: "view", data: nil, room: "r1"))
    }

    /// `data` is the client's text minus insignificant whitespace: key order and spelling as sent.
    @Test func dataIsCompactAndKeepsTypes() throws {
        let request = try decode(
            #"{ "op" : "publish", "room" : "r", "data" : { "b" : true, "n" : 1, "big" : 12345678901234567890, "f" : 0.5, "s" : "a/b", "z" : null } }"#)
        #expect(request == .publish(room: "r", data: JSONFragment(#"{"b":true,"n":1,"big":12345678901234567890,"f":0.5,"s":"a/b","z":null}"#), id: nil))
        #expect(try decode(#"{"op":"publish","room":"r","data":false}"#) == .publish(room: "r", data: JSONFragment("false"), id: nil))
        #expect(try decode(#"{"op":"publish","room":"r","data":1}"#) == .publish(room: "r", data: JSONFragment("1"), id: nil))
        #expect(
            try decode(#"{"op":"publish","room":"r","data":"é\n","id":9007199254740993}"#)
                == .publish(room: "r", data: JSONFragment("\"é\\n\""), id: JSONFragment("9007199254740993")))
    }

    // MARK: each error

    @Test func malformedFrames() {
        #expect(failure("{") == EnvelopeError(code: .badRequest, message: "malformed JSON"))
        #expect(failure("") == EnvelopeError(code: .badRequest, message: "malformed JSON"))
        #expect(failure("[1]") == EnvelopeError(code: .badRequest, message: "frame must be a JSON object"))
        #expect(failure("\"op\"") == EnvelopeError(code: .badRequest, message: "frame must be a JSON object"))
    }

    @Test func missingAndMistypedFields() {
        #expect(failure(#"{"room":"r"}"#) == EnvelopeError(code: .badRequest, message: "field 'op' is required"))
        #expect(failure(#"{"op":1}"#) == EnvelopeError(code: .badRequest, message: "field 'op' must be a string"))
        #expect(failure(#"{"op":"join"}"#) == EnvelopeError(code: .badRequest, message: "field 'room' is required"))
        #expect(failure(#"{"op":"join","room":5}"#) == EnvelopeError(code: .badRequest, message: "field 'room' must be a string"))
        #expect(failure(#"{"op":"join","room":true}"#) == EnvelopeError(code: .badRequest, message: "field 'room' must be a string"))
        #expect(failure(#"{"op":"join","room":"r","since":3}"#) == EnvelopeError(code: .badRequest, message: "field 'since' must be a string"))
        #expect(failure(#"{"op":"auth"}"#) == EnvelopeError(code: .badRequest, message: "field 'token' is required"))
        #expect(failure(#"{"op":"auth","token":null}"#) == EnvelopeError(code: .badRequest, message: "field 'token' is required"))
        #expect(failure(#"{"op":"publish","room":"r"}"#) == EnvelopeError(code: .badRequest, message: "field 'data' is required"))
        #expect(failure(#"{"op":"analytics","data":1}"#) == EnvelopeError(code: .badRequest, message: "field 'event' is required"))
    }

    @Test func idIsCarriedInErrors() {
        #expect(
            failure(#"{"op":"publish","room":"r","id":"x1"}"#)
                == EnvelopeError(code: .badRequest, message: "field 'data' is required", id: JSONFragment(#""x1""#)))
        #expect(failure(#"{"op":"nope","id":7}"#) == EnvelopeError(code: .unknownOp, message: "unknown op 'nope'", id: JSONFragment("7")))
        #expect(failure(#"{"op":"join","room":"a b","id":7}"#)?.id == JSONFragment("7"))
    }

    @Test func badIDs() throws {
        for id in ["true", "false", "{}", "[1]"] {
            #expect(
                failure(#"{"op":"publish","room":"r","data":1,"id":"# + id + "}")
                    == EnvelopeError(code: .badRequest, message: "field 'id' must be a string or number"))
        }
        #expect(try decode(#"{"op":"publish","room":"r","data":1,"id":null}"#) == .publish(room: "r", data: JSONFragment("1"), id: nil))
    }

    @Test func unknownOp() {
        #expect(failure(#"{"op":"x"}"#) == EnvelopeError(code: .unknownOp, message: "unknown op 'x'"))
        let long = String(repeating: "o", count: 500)
        #expect(failure(#"{"op":""# + long + #""}"#)?.message.utf8.count ?? 0 < 100)
    }

    @Test func invalidRooms() {
        for room in ["", "a b", #"a\"b"#, #"a\\b"#, "é", String(repeating: "r", count: 201), "tab\\t"] {
            #expect(failure(#"{"op":"join","room":""# + room + #""}"#)?.code == .invalidRoom, "\(room)")
        }
    }

    @Test func roomNames() {
        #expect(Envelope.isValidRoomName("lobby"))
        #expect(Envelope.isValidRoomName("chat:room/42?x=1&y=~"))
        #expect(Envelope.isValidRoomName(String(repeating: "r", count: 200)))
        #expect(!Envelope.isValidRoomName(String(repeating: "r", count: 201)))
        #expect(!Envelope.isValidRoomName(""))
        #expect(!Envelope.isValidRoomName("a b"))
        #expect(!Envelope.isValidRoomName("a\"b"))
        #expect(!Envelope.isValidRoomName("a\\b"))
        #expect(!Envelope.isValidRoomName("a\u{7F}"))
        #expect(!Envelope.isValidRoomName("ü"))
    }

    /// Client-side encoding decodes back to the same request.
    @Test func encodeRoundTrip() throws {
        let requests: [ClientRequest] = [
            .auth(token: "a\"b"), .join(room: "r", since: nil), .join(room: "r", since: "5-0"), .leave(room: "r"),
            .publish(room: "r", data: JSONFragment(#"{"a":[1,true,null]}"#), id: JSONFragment("3")),
            .publish(room: "r", data: JSONFragment("false"), id: nil), .presence(room: "r"),
            .analytics(event: "e", data: nil), .analytics(event: "e", data: JSONFragment("{}"))
        ]
        for request in requests {
            let bytes = Envelope.encode(request)
            #expect(bytes.starts(with: Array(#"{"op":"#.utf8)))
            #expect(try decode(String(decoding: bytes, as: UTF8.self)) == request)
        }
        #expect(String(decoding: Envelope.encode(.join(room: "lobby", since: nil)), as: UTF8.self) == #"{"op":"join","room":"lobby"}"#)
    }
}
