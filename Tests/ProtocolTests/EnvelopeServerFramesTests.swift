import Testing

@testable import Protocol

@Suite struct EnvelopeServerFramesTests {
    func text(_ bytes: [UInt8]) -> String { String(decoding: bytes, as: UTF8.self) }
    func server(_ bytes: [UInt8]) -> ServerMessage? { bytes.withUnsafeBytes { Envelope.decodeServer($0) } }

    @Test func encoders() {
        #expect(
            text(Envelope.hello(node: "n1", session: "s1", heartbeatSeconds: 25))
                == #"{"op":"hello","node":"n1","session":"s1","heartbeat":25}"#)
        #expect(
            text(Envelope.hello(node: "n", session: "s", heartbeatSeconds: 1, extra: [("user", "u\"1")]))
                == #"{"op":"hello","node":"n","session":"s","heartbeat":1,"user":"u\"1"}"#)
        #expect(
            text(Envelope.joined(room: "lobby", offset: "1700-0", recovered: false))
                == #"{"op":"joined","room":"lobby","offset":"1700-0","recovered":false}"#)
        #expect(text(Envelope.left(room: "lobby")) == #"{"op":"left","room":"lobby"}"#)
        #expect(
            text(Envelope.message(room: "lobby", offset: "1-0", data: JSONFragment(#"{"text":"hi"}"#)))
                == #"{"op":"message","room":"lobby","offset":"1-0","data":{"text":"hi"}}"#)
        #expect(text(Envelope.ack(id: JSONFragment(#""a""#), offset: "2-0")) == #"{"op":"ack","id":"a","offset":"2-0"}"#)
        #expect(text(Envelope.ack(id: nil, offset: "2-0")) == #"{"op":"ack","offset":"2-0"}"#)
        #expect(text(Envelope.presence(room: "r", count: 3, users: 2)) == #"{"op":"presence","room":"r","count":3,"users":2}"#)
        #expect(
            text(Envelope.error(.throttled, message: "slow down", id: JSONFragment("5"), extra: [("retry_after_ms", 500)]))
                == #"{"op":"error","code":"throttled","message":"slow down","id":5,"retry_after_ms":500}"#)
        #expect(
            text(Envelope.error(.internal, message: "line\nbreak \"q\""))
                == #"{"op":"error","code":"internal","message":"line\nbreak \"q\""}"#)
        #expect(text(Envelope.reconnect(afterMs: 1500)) == #"{"op":"reconnect","after_ms":1500}"#)
        #expect(
            text(Envelope.error(EnvelopeError(code: .unknownOp, message: "unknown op 'x'")))
                == #"{"op":"error","code":"unknown_op","message":"unknown op 'x'"}"#)
    }

    @Test func decodeServerRoundTrip() {
        var hello = ServerMessage(op: "hello")
        hello.node = "n1"; hello.session = "s1"; hello.heartbeat = 25
        #expect(server(Envelope.hello(node: "n1", session: "s1", heartbeatSeconds: 25)) == hello)

        let joined = server(Envelope.joined(room: "r", offset: "9-1", recovered: true))
        #expect(joined?.recovered == true && joined?.offset == "9-1" && joined?.room == "r")
        #expect(server(Envelope.joined(room: "r", offset: "0", recovered: false))?.recovered == false)

        let message = server(Envelope.message(room: "r", offset: "1-0", data: JSONFragment(#"{"n":1,"ok":true}"#)))
        #expect(message?.data == JSONFragment(#"{"n":1,"ok":true}"#))

        let ack = server(Envelope.ack(id: JSONFragment("12345678901234567890"), offset: "3-0"))
        #expect(ack?.id == JSONFragment("12345678901234567890") && ack?.offset == "3-0")

        #expect(server(Envelope.presence(room: "r", count: 4, users: 1)).map { [$0.count, $0.users] } == [4, 1])
        let error = server(Envelope.error(.notJoined, message: "join first", id: JSONFragment(#""q""#)))
        #expect(error?.code == "not_joined" && error?.message == "join first" && error?.id == JSONFragment(#""q""#))
        #expect(server(Envelope.reconnect(afterMs: 250))?.afterMs == 250)
        #expect(
            server(Envelope.left(room: "r"))
                == {
                    var m = ServerMessage(op: "left"); m.room = "r"; return m
                }())
    }

    @Test func decodeServerRejectsAndIgnores() {
        #expect(server(Array("nope".utf8)) == nil)
        #expect(server(Array("[]".utf8)) == nil)
        #expect(server(Array(#"{"room":"r"}"#.utf8)) == nil)
        #expect(server(Array(#"{"op":1}"#.utf8)) == nil)
        // Wrong types become nil; booleans are not counts and numbers are not booleans.
        let odd = server(Array(#"{"op":"x","count":true,"recovered":1,"after_ms":"5","room":3}"#.utf8))
        #expect(odd?.count == nil && odd?.recovered == nil && odd?.afterMs == nil && odd?.room == nil)
    }
}
