import Foundation
import Protocol
import Testing

/// Rooms joined in the upgrade URL (`/ws?join=R`, docs/protocol.md): answered like `join` ops right after
/// `hello`, refused before the 101 when the URL is bad, and authorized by the same token rules.
@Suite(.serialized) struct URLJoinTests {
    @Test func roomsInTheURLAreJoinedAfterHelloAndReceiveMessages() throws {
        let gw = try GatewayProcess(threads: 1)
        let c = try WSClient(port: gw.port, path: "/ws?join=lobby&join=user%3A7&token=ignored")
        let first = try c.nextJSON()
        let second = try c.nextJSON()
        #expect(first.op == "joined" && first.room == "lobby" && first.id == nil && first.offset != nil)
        #expect(second.op == "joined" && second.room == "user:7")
        let publisher = try WSClient(port: gw.port)
        try publisher.sendOp(#"{"op":"publish","room":"user:7","data":{"n":1}}"#)
        let got = try c.drainJSON(quiet: 0.5).filter { $0.op == "message" }
        #expect(got.count == 1 && got.first?.room == "user:7")
        #expect(try gw.metric("switchboard_rooms") == 2)
        // A `join` op of the same room afterwards is the usual idempotent repeat.
        #expect(try c.join("lobby").op == "joined")
    }

    @Test func aBadOrOversizedJoinListFailsTheUpgradeWith400() throws {
        let gw = try GatewayProcess(["--max-rooms-per-connection", "2"], threads: 1)
        for target in ["/ws?join=", "/ws?join=a%20b", "/ws?join=a%22", "/ws?join=" + String(repeating: "r", count: 201), "/ws?join=a&join=b&join=c"] {
            let answer = try upgradeAnswer(port: gw.port, target: target)
            #expect(answer.status == 400, "\(target.prefix(40)): \(answer.text.prefix(120))")
            #expect(answer.text.contains("join"), "the body names the parameter")
        }
        #expect(try upgradeAnswer(port: gw.port, target: "/ws?join=a&join=b").status == 101)
        // Only the accepted upgrade joined: two rooms; the refused ones none.
        #expect(try gw.metric("switchboard_room_joins_total") == 2)
    }

    @Test func urlJoinsFollowTheTokensRoomRules() throws {
        let keys = TestKeys.shared
        let gw = try GatewayProcess(["--jwt-secret", keys.secret], threads: 1)
        let token = TokenFactory.make(alg: "HS256", claims: TokenFactory.claims(sub: "alice", rooms: ["lobby"], publish: ["lobby"]))
        let c = try WSClient(port: gw.port, path: "/ws?token=\(token)&join=admin&join=lobby")
        let refused = try c.nextJSON()
        #expect(refused.op == "error" && refused.code == "forbidden")
        let joined = try c.nextJSON()
        #expect(joined.op == "joined" && joined.room == "lobby")
        #expect(try gw.metric("switchboard_auth_forbidden_total{op=\"join\"}") == 1)
    }
}
