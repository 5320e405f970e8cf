import Testing

@testable import Protocol

/// The `rpc` op (issue 14): `method` is an envelope field (the only 6-byte one), `id` is required.
@Suite struct EnvelopeRPCTests {
    func decode(_ json: String) throws(EnvelopeError) -> (ClientRequest, JSONFragment?) {
        try Array(json.utf8).withUnsafeBytes { raw in Result { () throws(EnvelopeError) in try Envelope.decodeWithID(raw) } }.get()
    }

    func failure(_ json: String) -> EnvelopeError? {
        do { _ = try decode(json); return nil } catch { return error }
    }

    @Test func decodesMethodDataAndID() throws {
        let (r, id) = try decode(#"{"op":"rpc","method":"buy","data":{ "sku" : 7 },"id":"r1"}"#)
        #expect(r == .rpc(method: "buy", data: JSONFragment(#"{"sku":7}"#)) && id == JSONFragment(#""r1""#))
        #expect(try decode(#"{"id":3,"method":"ping","op":"rpc"}"#).0 == .rpc(method: "ping", data: nil))
        #expect(try decode(#"{"op":"rpc","method":"ping","data":null,"id":3}"#).0 == .rpc(method: "ping", data: nil))
        // An escaped key is the same key; a longer one that starts alike is not.
        #expect(try decode(#"{"op":"rpc","\u006dethod":"m","id":1}"#).0 == .rpc(method: "m", data: nil))
        #expect(failure(#"{"op":"rpc","methods":"m","id":1}"#)?.message == "field 'method' is required")
    }

    @Test func refusals() {
        #expect(failure(#"{"op":"rpc","method":"m"}"#)?.message == "field 'id' is required (rpc_result echoes it)")
        #expect(failure(#"{"op":"rpc","id":1}"#)?.message == "field 'method' is required")
        #expect(failure(#"{"op":"rpc","method":7,"id":1}"#)?.message == "field 'method' must be a string")
        #expect(failure(#"{"op":"rpc","method":"","id":1}"#)?.message == "field 'method' must be 1-200 bytes")
        #expect(failure(#"{"op":"rpc","method":"a","method":"b","id":1}"#)?.message == "duplicate field 'method'")
        #expect(failure(#"{"op":"rpc","method":"a","id":1}"#) == nil)
        // Other ops ignore a stray "method".
        #expect((try? decode(#"{"op":"leave","room":"r","method":"x"}"#))?.0 == .leave(room: "r"))
    }

    @Test func encodeRoundTrips() throws {
        let bytes = Envelope.encode(.rpc(method: "buy", data: JSONFragment("[1]")))
        #expect(String(decoding: bytes, as: UTF8.self) == #"{"op":"rpc","method":"buy","data":[1]}"#)
    }
}
