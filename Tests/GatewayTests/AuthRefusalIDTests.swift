import Foundation
import Testing

/// The refusals of `authorize` (unauthorized before `auth`, forbidden by the token's claims) echo the
/// frame's `id` for every op, as docs/protocol.md says of every error a frame causes; only `publish` did.
@Suite(.serialized) struct AuthRefusalIDTests {
    @Test func unauthorizedAndForbiddenEchoTheFrameIDOfEveryOp() throws {
        let gw = try GatewayProcess(["--jwt-secret", TestKeys.shared.secret], threads: 1)
        let c = try WSClient(port: gw.port, expectHello: false)  // no token: upgraded, must send auth
        for (op, id) in [
            (#"{"op":"join","room":"lobby","id":"j1"}"#, "j1"), (#"{"op":"presence","room":"lobby","id":"p1"}"#, "p1"),
            (#"{"op":"leave","room":"lobby","id":"l1"}"#, "l1"), (#"{"op":"publish","room":"lobby","data":1,"id":"u1"}"#, "u1")
        ] {
            try c.sendOp(op)
            let e = try APITest.next(c)
            #expect(e?["code"] as? String == "unauthorized" && e?["id"] as? String == id, "\(op) → \(e ?? [:])")
        }
        let token = TokenFactory.make(claims: TokenFactory.claims(sub: "alice", rooms: ["lobby"], publish: ["lobby"]))
        try c.sendOp("{\"op\":\"auth\",\"token\":\"\(token)\"}")
        #expect(try APITest.next(c)?["op"] as? String == "hello")
        for (op, id) in [
            (#"{"op":"join","room":"secret","id":7}"#, 7), (#"{"op":"presence","room":"secret","id":8}"#, 8),
            (#"{"op":"publish","room":"secret","data":1,"id":9}"#, 9)
        ] {
            try c.sendOp(op)
            let e = try APITest.next(c)
            #expect(e?["code"] as? String == "forbidden" && e?["id"] as? Int == id, "\(op) → \(e ?? [:])")
        }
        // Without an id the refusal carries none.
        try c.sendOp(#"{"op":"join","room":"secret"}"#)
        let e = try APITest.next(c)
        #expect(e?["code"] as? String == "forbidden" && e?["id"] == nil, "\(e ?? [:])")
    }
}
