import Foundation
import Glibc
import Protocol
import Runtime
import Testing

/// The server API across two real nodes on a real Redis (issue 14, "Done when"): cluster-wide disconnect,
/// server-side subscribe / unsubscribe, presence, rooms, history, info, and room-class metrics.
@Suite(.serialized) struct APIClusterTests {
    func cluster(_ extra: [String] = [], threads: Int = 2) throws -> (RedisServer, [GatewayProcess]) {
        let redis = try RedisServer()
        let prefix = "api\(UInt16.random(in: 0...UInt16.max)):"
        var nodes: [GatewayProcess] = []
        for id in ["a", "b"] {
            nodes.append(
                try GatewayProcess(
                    [
                        "--redis-url", redis.url, "--node-id", id, "--prefix", prefix, "--api-key", APITest.key,
                        "--api-key", APITest.otherKey, "--jwt-secret", TestKeys.shared.secret
                    ] + extra, threads: threads))
        }
        for n in nodes {
            try APITest.waitUntil(10, "node ready") { (try? httpGet(port: n.adminPort, path: "/ready"))?.0 == 200 }
        }
        return (redis, nodes)
    }

    @Test func disconnectSubscribeAndReadsReachEveryNode() throws {
        let (redis, nodes) = try cluster()
        defer { withExtendedLifetime((redis, nodes)) {} }
        let (a, b) = (nodes[0], nodes[1])
        let bob = [
            try APITest.client(a.port, user: "bob"), try APITest.client(a.port, user: "bob"),
            try APITest.client(b.port, user: "bob"), try APITest.client(b.port, user: "bob")
        ]
        let carol = try APITest.client(a.port, user: "carol")

        // Server-side subscribe from node A reaches bob's connections on both nodes, each told the offset.
        let sub = try APITest.call(a.adminPort, "subscribe", #"{"user":"bob","room":"news"}"#)
        #expect(sub.status == 200)
        #expect(sub.json["affected"] as? Int == 4)
        #expect((sub.json["nodes"] as? [String: Int]) == ["answered": 2, "reached": 2])
        #expect((sub.json["request_id"] as? String)?.isEmpty == false)
        for c in bob {
            let joined = try APITest.next(c, op: "joined")
            #expect(joined?["room"] as? String == "news" && (joined?["offset"] as? String)?.isEmpty == false)
        }
        // The next message published (through node B, with the second key) reaches all four.
        let pub = try APITest.call(b.adminPort, "publish", #"{"room":"news","data":{"n":1}}"#, key: APITest.otherKey)
        #expect(pub.status == 202 && pub.json["offset"] is String)
        for c in bob {
            let m = try APITest.next(c, op: "message")
            #expect((m?["data"] as? [String: Int]) == ["n": 1])
        }
        // Presence (count + paged users), rooms and history see the whole cluster.
        try APITest.waitUntil(5, "presence of news = 4") {
            try APITest.call(b.adminPort, "presence", #"{"room":"news"}"#).json["connections"] as? Int == 4
        }
        let presence = try APITest.call(b.adminPort, "presence", #"{"room":"news","limit":1}"#).json
        #expect(presence["users"] as? Int == 1)
        #expect((presence["items"] as? [[String: Any]])?.first?["user"] as? String == "bob")
        #expect((presence["items"] as? [[String: Any]])?.first?["connections"] as? Int == 4)
        #expect(presence["next"] is NSNull)
        let rooms = try APITest.call(a.adminPort, "rooms", #"{"pattern":"ne*"}"#).json
        #expect((rooms["rooms"] as? [[String: Any]])?.isEmpty == true, "ne* is literal inside a segment")
        let roomsAll = try APITest.call(a.adminPort, "rooms", #"{"pattern":"*"}"#).json
        #expect((roomsAll["rooms"] as? [[String: Any]])?.map { $0["room"] as? String } == ["news"])
        #expect((roomsAll["rooms"] as? [[String: Any]])?.first?["connections"] as? Int == 4)
        _ = try APITest.call(a.adminPort, "publish", #"{"room":"news","data":{"n":2}}"#)
        let history = try APITest.call(a.adminPort, "history", #"{"room":"news","limit":1}"#).json
        let newest = history["messages"] as? [[String: Any]]
        #expect((newest?.first?["data"] as? [String: Int]) == ["n": 2])
        let older = try APITest.call(a.adminPort, "history", "{\"room\":\"news\",\"from\":\"\(history["next"] as? String ?? "")\"}").json
        #expect(((older["messages"] as? [[String: Any]])?.first?["data"] as? [String: Int]) == ["n": 1])
        let asc = try APITest.call(b.adminPort, "history", #"{"room":"news","order":"asc"}"#).json
        #expect((asc["messages"] as? [[String: Any]])?.compactMap { ($0["data"] as? [String: Int])?["n"] } == [1, 2])
        for c in bob { _ = try APITest.next(c, op: "message") }
        let foreign = try APITest.call(b.adminPort, "history", #"{"room":"news","from":"abc:1-1"}"#)
        #expect(foreign.status == 400 && foreign.json["field"] as? String == "from", "an offset of another history")

        // Unsubscribe: every connection gets `left`.
        let unsub = try APITest.call(b.adminPort, "unsubscribe", #"{"user":"bob","room":"news"}"#)
        #expect(unsub.json["affected"] as? Int == 4)
        for c in bob { #expect(try APITest.next(c, op: "left")?["room"] as? String == "news") }

        // Info lists both nodes, ready, with their connections.
        let info = try APITest.call(a.adminPort, "info", "{}").json
        let listed = (info["nodes"] as? [[String: Any]]) ?? []
        #expect(Set(listed.compactMap { $0["id"] as? String }) == ["a", "b"])
        #expect(listed.allSatisfy { $0["state"] as? String == "ready" })
        #expect(listed.first { $0["id"] as? String == "a" }?["connections"] as? Int == 3)

        // An unknown user is not an error.
        let nobody = try APITest.call(a.adminPort, "disconnect", #"{"user":"nobody"}"#)
        #expect(nobody.status == 200 && nobody.json["affected"] as? Int == 0)

        // Disconnect bob everywhere: one call, four closes with the code, within 1 s; carol stays.
        let started = Date()
        let d = try APITest.call(b.adminPort, "disconnect", #"{"user":"bob","code":4010,"reason":"banned","reconnect":false}"#)
        #expect(d.json["affected"] as? Int == 4)
        for c in bob {
            let frame = try APITest.next(c, op: "disconnect", timeout: 1)
            #expect(frame?["reason"] as? String == "banned" && frame?["reconnect"] as? Bool == false && frame?["code"] as? Int == 4010)
            #expect(try c.expectClose(timeout: 1) == 4010)
        }
        let elapsed = Date().timeIntervalSince(started)
        #expect(elapsed < 1.0, "disconnect took \(elapsed) s")
        try carol.sendOp(#"{"op":"presence","room":"news"}"#)
        #expect(try APITest.next(carol, op: "presence") != nil)
    }

    @Test func roomClassMetricsFollowJoinsAndLeavesOnTwoNodes() throws {
        let (redis, nodes) = try cluster(["--metrics-room-class", "stream=stream:*", "--metrics-room-class", "chat=chat:**"], threads: 2)
        defer { withExtendedLifetime((redis, nodes)) {} }
        let (a, b) = (nodes[0], nodes[1])
        func gauges(_ n: GatewayProcess, _ cls: String) throws -> (Double?, Double?) {
            (try n.metric("switchboard_rooms{class=\"\(cls)\"}"), try n.metric("switchboard_room_members{class=\"\(cls)\"}"))
        }
        #expect(try gauges(a, "stream") == (0, 0))
        let a1 = try APITest.client(a.port, user: "u1")
        let a2 = try APITest.client(a.port, user: "u2")
        let b1 = try APITest.client(b.port, user: "u3")
        let b2 = try APITest.client(b.port, user: "u4")
        _ = try a1.join("stream:1")
        _ = try a2.join("stream:1")
        _ = try a2.join("lobby")
        _ = try b1.join("stream:1")
        _ = try b2.join("stream:2")
        _ = try b2.join("stream:2:extra")  // not a stream: `*` is one segment
        _ = try b2.join("chat:x:y")
        #expect(try gauges(a, "stream") == (1, 2))
        #expect(try gauges(b, "stream") == (2, 2))
        #expect(try gauges(b, "chat") == (1, 1))
        #expect(try gauges(a, "chat") == (0, 0))
        try a2.sendOp(#"{"op":"leave","room":"stream:1"}"#)
        _ = try APITest.next(a2, op: "left")
        #expect(try gauges(a, "stream") == (1, 1))
        try b2.send(.close, [0x03, 0xE8])
        try APITest.waitUntil(3, "b's stream:2 gone") { try gauges(b, "stream") == (1, 1) }
        #expect(try gauges(b, "chat") == (0, 0))
        // Bounded: one series per class, none per room.
        let (_, text) = try httpGet(port: b.adminPort, path: "/metrics")
        #expect(text.split(separator: "\n").filter { $0.hasPrefix("switchboard_rooms{") }.count == 2)
    }
}
