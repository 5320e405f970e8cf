import Foundation
import Glibc
import Protocol
import Testing

/// Integration tests: the real `switchboard` binary on loopback, driven by real sockets.
@Suite(.serialized) struct RoomsTests {
    /// Opens clients until both event loops have at least `perLoop` members (SO_REUSEPORT spreads them).
    func clientsOnBothLoops(_ gw: GatewayProcess, perLoop: Int = 2) throws -> [WSClient] {
        var clients: [WSClient] = []
        var loops: [String: Int] = [:]
        for _ in 0..<64 {
            let c = try WSClient(port: gw.port)
            let loop = c.helloLoop ?? "?"
            loops[loop, default: 0] += 1
            clients.append(c)
            if loops.count >= 2 && loops.values.allSatisfy({ $0 >= perLoop }) { break }
        }
        #expect(loops.count == 2, "clients landed on loops \(loops)")
        return clients
    }

    @Test func membersOnDifferentLoopsEachReceiveEveryMessageOnceInOrder() throws {
        let gw = try GatewayProcess(threads: 2)
        let clients = try clientsOnBothLoops(gw)
        for c in clients {
            let j = try c.join("lobby")
            #expect(j.op == "joined" && j.room == "lobby" && j.recovered == false)
        }
        let publisher = clients[0]
        let count = 50
        for i in 0..<count {
            try publisher.sendOp("{\"op\":\"publish\",\"room\":\"lobby\",\"data\":{\"n\":\(i),\"ok\":true},\"id\":\(i)}")
        }
        var acks = 0
        for c in clients {
            let msgs = try c.drainJSON(quiet: 0.7)
            let data = msgs.filter { $0.op == "message" }
            acks += msgs.filter { $0.op == "ack" }.count
            #expect(data.count == count, "a member got \(data.count) of \(count)")
            let ns = data.compactMap { $0.data.flatMap { String(decoding: $0.bytes, as: UTF8.self) } }
            #expect(ns == (0..<count).map { "{\"n\":\($0),\"ok\":true}" })
            let offsets = data.compactMap(\.offset)
            #expect(Set(offsets).count == count)
        }
        #expect(acks == count, "only the publisher gets acks, one per publish with an id")
        #expect(try gw.metric("switchboard_connections_open") == Double(clients.count))
    }

    @Test func duplicateJoinIsIdempotentAndOneLeaveRemoves() throws {
        // ../shared/cases C26
        let gw = try GatewayProcess(threads: 1)
        let a = try WSClient(port: gw.port)
        let b = try WSClient(port: gw.port)
        // Two joins in one TCP write: two frames back to back.
        let j1 = FrameEncoder.frame(opcode: .text, payload: Array("{\"op\":\"join\",\"room\":\"r\"}".utf8), maskingKey: 0x0102_0304)
        try a.socket.send(j1 + j1)
        let joins = try a.drainJSON(quiet: 0.3)
        #expect(joins.filter { $0.op == "joined" }.count == 2, "each join is acknowledged")
        _ = try a.join("r")
        _ = try b.join("r")
        try b.sendOp("{\"op\":\"publish\",\"room\":\"r\",\"data\":1}")
        let got = try a.drainJSON(quiet: 0.5).filter { $0.op == "message" }
        #expect(got.count == 1)
        try a.sendOp("{\"op\":\"leave\",\"room\":\"r\"}")
        #expect(try a.nextJSON().op == "left")
        _ = try b.drainJSON(quiet: 0.2)
        try b.sendOp("{\"op\":\"publish\",\"room\":\"r\",\"data\":2}")
        #expect(try a.drainJSON(quiet: 0.5).filter { $0.op == "message" }.isEmpty)
        #expect(try b.drainJSON(quiet: 0.3).filter { $0.op == "message" }.count == 1)
    }

    @Test func answersEchoTheRequestIDAndARepeatedJoinWithSinceReplaysNothing() throws {
        let gw = try GatewayProcess(threads: 1)
        let c = try WSClient(port: gw.port)
        try c.sendOp(#"{"op":"join","room":"ids","id":"j1"}"#)
        let joined = try c.nextJSON()
        #expect(joined.op == "joined" && joined.id == JSONFragment(#""j1""#))
        for i in 0..<3 { try c.sendOp("{\"op\":\"publish\",\"room\":\"ids\",\"data\":\(i)}") }
        let got = try c.drainJSON(quiet: 0.3).filter { $0.op == "message" }
        #expect(got.count == 3)
        // Already a member: the join is acknowledged and nothing is replayed again.
        try c.sendOp("{\"op\":\"join\",\"room\":\"ids\",\"since\":\"\(try #require(got.first?.offset))\",\"id\":2}")
        let again = try c.drainJSON(quiet: 0.3)
        #expect(again.map(\.op) == ["joined"] && again.first?.recovered == false && again.first?.id == JSONFragment("2"))
        try c.sendOp(#"{"op":"presence","room":"ids","id":3}"#)
        #expect(try c.nextJSON().id == JSONFragment("3"))
        try c.sendOp(#"{"op":"leave","room":"ids","id":4}"#)
        let left = try c.nextJSON()
        #expect(left.op == "left" && left.id == JSONFragment("4"))
        try c.sendOp(#"{"op":"leave","room":"ids","id":5}"#)
        let notJoined = try c.nextJSON()
        #expect(notJoined.code == "not_joined" && notJoined.id == JSONFragment("5"))
    }

    @Test func leaveOfUnknownRoomAndDoubleLeaveKeepOthersSubscribed() throws {
        // ../shared/cases C27
        let gw = try GatewayProcess(threads: 1)
        let a = try WSClient(port: gw.port)
        let b = try WSClient(port: gw.port)
        let p = try WSClient(port: gw.port)
        try a.sendOp("{\"op\":\"leave\",\"room\":\"never\"}")
        let e = try a.nextJSON()
        #expect(e.op == "error" && e.code == "not_joined")
        _ = try a.join("r")
        _ = try b.join("r")
        try a.sendOp("{\"op\":\"leave\",\"room\":\"r\"}")
        try a.sendOp("{\"op\":\"leave\",\"room\":\"r\"}")
        let replies = try a.drainJSON(quiet: 0.3)
        #expect(replies.map(\.op) == ["left", "error"])
        try p.sendOp("{\"op\":\"publish\",\"room\":\"r\",\"data\":\"x\"}")
        #expect(try b.drainJSON(quiet: 0.5).filter { $0.op == "message" }.count == 1)
        #expect(try a.drainJSON(quiet: 0.3).filter { $0.op == "message" }.isEmpty)
        try a.send(.ping, Array("still-here".utf8))
        var sawPong = false
        while let ev = try a.next(timeout: 1) { if ev == .pong(Array("still-here".utf8)) { sawPong = true; break } }
        #expect(sawPong)
        #expect(try gw.metric("switchboard_rooms") == 1)
    }

    @Test func malformedEnvelopesGetTypedErrorsAndTheConnectionStays() throws {
        let gw = try GatewayProcess(threads: 1)
        let c = try WSClient(port: gw.port)
        let cases: [(String, String)] = [
            ("not json", "bad_request"),
            ("[1,2]", "bad_request"),
            ("{\"room\":\"x\"}", "bad_request"),
            ("{\"op\":\"dance\"}", "unknown_op"),
            ("{\"op\":\"join\"}", "bad_request"),
            ("{\"op\":\"join\",\"room\":5}", "bad_request"),
            ("{\"op\":\"join\",\"room\":\"has space\"}", "invalid_room"),
            ("{\"op\":\"publish\",\"room\":\"r\"}", "bad_request")
        ]
        for (input, code) in cases {
            try c.sendText(input)
            let e = try c.nextJSON()
            #expect(e.op == "error" && e.code == code, "\(input) -> \(e.op) \(e.code ?? "-")")
        }
        #expect(try c.join("ok").op == "joined")
    }

    @Test func garbageSenderIsClosedAndOthersKeepReceiving() throws {
        let gw = try GatewayProcess(threads: 1)
        let good = try WSClient(port: gw.port)
        _ = try good.join("room")
        let bad = try WSClient(port: gw.port)
        _ = try bad.join("room")
        try bad.socket.send([0x81, 0x05, 0x68, 0x65, 0x6c, 0x6c, 0x6f])  // unmasked text: RFC 6455 §5.1
        #expect(try bad.expectClose() == 1002)
        #expect(bad.socket.waitForEOF(timeout: 3))
        let raw = try RawSocket(port: gw.port)
        try raw.send(Array((0..<4096).map { UInt8(truncatingIfNeeded: $0 &* 31) }))
        _ = raw.waitForEOF(timeout: 3)
        try good.sendOp("{\"op\":\"publish\",\"room\":\"room\",\"data\":\"after\",\"id\":\"a\"}")
        let msgs = try good.drainJSON(quiet: 0.5)
        #expect(msgs.contains { $0.op == "message" && $0.data?.bytes == Array("\"after\"".utf8) })
    }

    @Test func clientThatStopsReadingIsClosedAsSlowConsumerWhileOthersReceiveAll() throws {
        let gw = try GatewayProcess(["--max-outbound-bytes", "256KiB"], threads: 1)
        // A 4 KiB receive window set before connecting, so the kernel buffers little for the stalled client.
        let stalled = try WSClient(port: gw.port, receiveBuffer: 4096)
        _ = try stalled.join("flood")
        let reader = try WSClient(port: gw.port)
        _ = try reader.join("flood")
        let publisher = try WSClient(port: gw.port)
        let payload = String(repeating: "x", count: 32 * 1024)
        let total = 400  // 12.8 MiB: far more than socket buffers plus the 256 KiB high-water mark
        var received = 0
        for _ in 0..<total {
            try publisher.sendOp("{\"op\":\"publish\",\"room\":\"flood\",\"data\":\"\(payload)\"}")
            received += try reader.countMessages(quiet: 0.001)
        }
        let deadline = Date().addingTimeInterval(10)
        while received < total && Date() < deadline { received += try reader.countMessages(quiet: 0.2) }
        #expect(received == total, "the reading member got \(received) of \(total)")
        #expect(try gw.metric("switchboard_slow_consumer_closes_total") == 1)
        #expect(try gw.metric("switchboard_connections_closed_total{code=\"4004\"}") == 1)
        // The stalled client's connection ends: it finds a close 4004 (slow consumer) after the bytes that were written,
        // or (when its window never reopened before the close timeout) a reset.
        var ended = false
        var code: UInt16? = nil
        let until = Date().addingTimeInterval(10)
        while Date() < until {
            do {
                guard let e = try stalled.next(timeout: 2) else { continue }
                if case .close(let c, _) = e { code = c; ended = true; break }
            } catch {
                ended = true
                break
            }
        }
        #expect(ended)
        #expect(code == nil || code == 4004)
    }
}
