// Micro-benchmark of the Socket.IO protocol layer (no sockets): ns per decode / session step, and
// RSS per idle SocketIOSession. Needs a quiet machine for stable figures. Build and run:
//   swiftc -O -parse-as-library -module-name Bench -I Sources/COpenSSL Sources/Protocol/*.swift \
//       Benchmarks/socketio-parsers.swift -lssl -lcrypto -o /tmp/socketio-bench && /tmp/socketio-bench
import Foundation

@main struct Bench {
    static func measure(_ name: String, _ n: Int, _ body: () -> Int) {
        var sink = 0
        for _ in 0..<(n / 10) { sink &+= body() }  // warm up
        let start = DispatchTime.now().uptimeNanoseconds
        for _ in 0..<n { sink &+= body() }
        let ns = Double(DispatchTime.now().uptimeNanoseconds - start) / Double(n)
        print(String(format: "%-52@ %8.0f ns/op", name as NSString, ns) + (sink == Int.min ? "!" : ""))
    }

    static func rssBytes() -> Int {
        let text = (try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8)) ?? "0 0"
        return (Int(text.split(separator: " ")[1]) ?? 0) * 4096
    }

    static func main() {
        let event = Array(#"42/chat,7["publish","lobby",{"text":"hello world","n":[1,2,3],"ok":true}]"#.utf8)
        let socketIOText = Array(event.dropFirst())
        measure("SocketIOPacket.decode (event, 73 B)", 200_000) { (try? SocketIOPacket.decode(socketIOText))?.arguments.count ?? -1 }
        var session = SocketIOSession(sid: "s", transport: .websocket, configuration: SocketIOSessionConfiguration(namespaces: ["/", "/chat"]))
        _ = session.start(now: 0)
        _ = session.receive(text: Array("40/chat,".utf8), now: 0)
        _ = session.connectResult(namespace: "/chat", .accepted(socketID: "x", pid: nil))
        measure("SocketIOSession.receive(text:) publish → action", 200_000) { session.receive(text: event, now: 1).count }
        let op = Array(#"{"op":"publish","room":"lobby","data":{"text":"hello world","n":[1,2,3],"ok":true},"id":7}"#.utf8)
        measure("Envelope.decode (same publish, room protocol)", 200_000) { op.withUnsafeBytes { (try? Envelope.decode($0)) == nil ? 0 : 1 } }
        let body = EngineIOPayloadDecoder.encode(Array(repeating: EngineIOPacket.message(socketIOText), count: 10))
        measure("EngineIOPayloadDecoder.decode (10 packets)", 50_000) { (try? EngineIOPayloadDecoder.decode(body))?.count ?? -1 }
        measure("SocketIOSession.roomMessage", 200_000) {
            session.roomMessage(namespace: "/chat", room: "lobby", data: JSONFragment(#"{"text":"hi"}"#), offset: "9f3a61c2:1733300000000-42").count
        }

        let count = 100_000
        var sessions: [SocketIOSession] = []
        let before = rssBytes()
        sessions.reserveCapacity(count)
        for i in 0..<count {
            var s = SocketIOSession(sid: "sid-\(i)-abcdefghij", transport: .websocket, configuration: SocketIOSessionConfiguration(namespaces: ["/", "/chat"]))
            _ = s.start(now: 0)
            _ = s.receive(text: Array("40".utf8), now: 0)
            _ = s.connectResult(namespace: "/", .accepted(socketID: "x", pid: nil))
            sessions.append(s)
        }
        print(
            "RSS per idle session (\"/\" connected): \((rssBytes() - before) / count) bytes, of which \(MemoryLayout<SocketIOSession>.stride) inline; \(sessions.count) sessions"
        )
    }
}
