import Foundation
import Glibc
import Protocol
import Testing

/// ../shared/cases C24: SIGTERM with many clients drains them over the window, no reconnect storm.
@Suite(.serialized) struct DrainTests {
    /// Reads frames from many raw sockets at once (poll), recording when each close arrives and its code.
    final class Crowd {
        struct Member {
            let socket: RawSocket
            var reader = WebSocketReader(role: .client)
            var closeCode: UInt16?
            var closedAt: Date?
            var reconnectSeen = false
            var messages = 0
        }
        var members: [Member] = []

        init(port: Int, count: Int, room: String) throws {
            for _ in 0..<count {
                let s = try RawSocket(port: port)
                let (req, _) = WebSocketHandshake.clientRequest(host: "127.0.0.1", path: "/ws")
                let join = FrameEncoder.frame(opcode: .text, payload: Array("{\"op\":\"join\",\"room\":\"\(room)\"}".utf8), maskingKey: 0x0a0b_0c0d)
                try s.send(req + join)
                var head = HTTPResponseHeadParser()
                let deadline = Date().addingTimeInterval(5)
                while true {
                    guard Date() < deadline else { throw TestFailure("no 101") }
                    _ = try s.fill(timeout: 1)
                    if case .complete(_, let consumed) = try s.buffer.withUnsafeBytes({ try head.feed($0) }) {
                        s.buffer.removeFirst(consumed)
                        break
                    }
                    head = HTTPResponseHeadParser()
                }
                members.append(Member(socket: s))
            }
        }

        /// Polls every socket until all closed or `timeout`.
        func run(timeout: TimeInterval) {
            let deadline = Date().addingTimeInterval(timeout)
            while Date() < deadline && members.contains(where: { $0.closedAt == nil }) {
                var fds = members.map { pollfd(fd: $0.socket.fd, events: Int16(POLLIN), revents: 0) }
                _ = poll(&fds, nfds_t(fds.count), 50)
                for i in members.indices where fds[i].revents != 0 && members[i].closedAt == nil {
                    do {
                        _ = try members[i].socket.fill(timeout: 0)
                    } catch {
                        members[i].closedAt = Date()
                        continue
                    }
                    var bytes = members[i].socket.buffer
                    members[i].socket.buffer = []
                    var code: UInt16?? = nil
                    var reconnect = false
                    var msgs = 0
                    try? bytes.withUnsafeMutableBytes { b in
                        try members[i].reader.feed(b) { ev in
                            switch ev {
                            case .close(let c, _): code = .some(c?.rawValue)
                            case .text(let t):
                                if String(decoding: t, as: UTF8.self).hasPrefix("{\"op\":\"reconnect\"") { reconnect = true }
                                if String(decoding: t, as: UTF8.self).hasPrefix("{\"op\":\"message\"") { msgs += 1 }
                            default: break
                            }
                            return true
                        }
                    }
                    members[i].messages += msgs
                    if reconnect { members[i].reconnectSeen = true }
                    if let c = code {
                        members[i].closeCode = c
                        members[i].closedAt = Date()
                        // Answer the close so the server's close handshake completes.
                        try? members[i].socket.send(FrameEncoder.frame(opcode: .close, payload: FrameEncoder.closePayload(code: .normalClosure), maskingKey: 1))
                    }
                }
            }
        }
    }

    @Test func drainSpreadsClosesOverTheWindowAndFlushesQueuedMessages() throws {
        let n = 300
        let windowSeconds = 3.0
        let gw = try GatewayProcess(["--drain-delay", "500ms", "--drain-window", "3s", "--drain-deadline", "8s", "--api-key", "k"], threads: 2)
        let crowd = try Crowd(port: gw.port, count: n, room: "drain")
        usleep(300_000)
        // A message queued right before the signal must reach everyone before their close.
        let (status, _) = try httpRequest(
            port: gw.adminPort, method: "POST", path: "/api/publish", headers: ["Authorization": "Bearer k"],
            body: Array("{\"room\":\"drain\",\"data\":\"last words\"}".utf8))
        #expect(status == 202)
        let signalled = Date()
        kill(gw.pid, SIGTERM)
        usleep(200_000)
        #expect(try httpGet(port: gw.adminPort, path: "/ready").0 == 503)
        #expect(try httpGet(port: gw.adminPort, path: "/health").0 == 200)
        crowd.run(timeout: TestTiming.seconds(10))
        let closes = crowd.members.compactMap(\.closedAt)
        #expect(closes.count == n, "all \(n) clients closed")
        #expect(crowd.members.allSatisfy { $0.closeCode == 1012 }, "codes: \(Set(crowd.members.map { $0.closeCode.map(String.init) ?? "none" }))")
        #expect(crowd.members.allSatisfy { $0.reconnectSeen })
        #expect(crowd.members.allSatisfy { $0.messages == 1 }, "the queued message reached every member before its close")
        // Spread: no one-second window holds more than 2N/D closes (C24 asks for ≤ 0.25 N with D = 10 s).
        let offsets = closes.map { $0.timeIntervalSince(signalled) }.sorted()
        var worst = 0
        for (i, t) in offsets.enumerated() {
            worst = max(worst, offsets[i...].prefix { $0 < t + 1 }.count)
        }
        // A slowed build (TSan, TestTiming.scale > 1) falls behind the plan and catches up in bursts, so there
        // the check is only that the closes are spread at all (no second holds 90% of them).
        let bound = TestTiming.scale > 1 ? 0.9 * Double(n) : 2 * Double(n) / windowSeconds
        #expect(Double(worst) <= bound, "max closes in 1 s: \(worst)")
        #expect((offsets.last ?? 99) <= 0.5 + windowSeconds + TestTiming.seconds(2))
        print("drain: \(n) clients, max closes in any 1 s window \(worst), last close after \(String(format: "%.2f", offsets.last ?? -1)) s")
        #expect(gw.waitForExit(timeout: 10) == 0)
    }
}
