import Foundation
import Glibc
import Protocol

/// A blocking WebSocket client for integration tests: a real socket to the real binary, frames built with
/// the Protocol module's client role (masked), server frames read with `WebSocketReader(role: .client)`.
final class WSClient {
    enum Event: Equatable {
        case text(String)
        case binary([UInt8])
        case ping([UInt8])
        case pong([UInt8])
        case close(UInt16?, String)
    }

    let socket: RawSocket
    private var reader = WebSocketReader(role: .client, maxMessageSize: 64 << 20)
    private var events: [Event] = []
    private(set) var upgradeHeaders: HTTPHeaders?
    /// Server `hello` payload, when the room path sent one.
    private(set) var hello: ServerMessage?
    /// The `loop` field of `hello` (which event loop serves this connection).
    private(set) var helloLoop: String?

    /// Connects and upgrades at `path`; for the room path waits for `hello`.
    init(port: Int, path: String = "/ws", headers: [HTTPHeader] = [], expectHello: Bool = true, receiveBuffer: Int? = nil) throws {
        socket = try RawSocket(port: port, receiveBuffer: receiveBuffer)
        let (request, key) = WebSocketHandshake.clientRequest(host: "127.0.0.1:\(port)", path: path, headers: headers)
        try socket.send(request)
        var parser = HTTPResponseHeadParser()
        let deadline = Date().addingTimeInterval(5)
        while true {
            guard Date() < deadline else { throw TestFailure("no upgrade response") }
            _ = try socket.fill(timeout: deadline.timeIntervalSinceNow)
            let result = try socket.buffer.withUnsafeBytes { try parser.feed($0) }
            if case .complete(let head, let consumed) = result {
                socket.buffer.removeFirst(consumed)
                guard head.status == 101 else { throw TestFailure("upgrade answered \(head.status)") }
                guard head.headers["Sec-WebSocket-Accept"] == WebSocketHandshake.acceptValue(forKey: key) else {
                    throw TestFailure("bad Sec-WebSocket-Accept")
                }
                upgradeHeaders = head.headers
                break
            }
            parser = HTTPResponseHeadParser()  // re-feed the whole buffer next time
        }
        if expectHello {
            guard case .text(let t)? = try next(timeout: 5),
                let h = Array(t.utf8).withUnsafeBytes({ Envelope.decodeServer($0) }), h.op == "hello"
            else {
                throw TestFailure("expected hello")
            }
            hello = h
            if let obj = try? JSONSerialization.jsonObject(with: Data(t.utf8)) as? [String: Any] {
                helloLoop = (obj["loop"] as? String) ?? (obj["loop"] as? Int).map(String.init)
            }
        }
    }

    /// Sends a masked frame.
    func send(_ opcode: Opcode, _ payload: [UInt8], fin: Bool = true) throws {
        try socket.send(FrameEncoder.frame(opcode: opcode, payload: payload, fin: fin, maskingKey: UInt32.random(in: 0...UInt32.max)))
    }

    func sendText(_ text: String) throws { try send(.text, Array(text.utf8)) }

    /// Sends a JSON object built from `fields` (values already JSON text).
    func sendOp(_ json: String) throws { try sendText(json) }

    /// The next event within `timeout` seconds (nil on timeout). Pings are answered automatically and
    /// still reported.
    func next(timeout: TimeInterval = 3) throws -> Event? {
        let deadline = Date().addingTimeInterval(timeout)
        while events.isEmpty {
            if !socket.buffer.isEmpty {
                var bytes = socket.buffer
                socket.buffer = []
                var collected: [Event] = []
                try bytes.withUnsafeMutableBytes { buf in
                    try reader.feed(buf) { ev in
                        switch ev {
                        case .text(let p): collected.append(.text(String(decoding: p, as: UTF8.self)))
                        case .binary(let p): collected.append(.binary(Array(p)))
                        case .ping(let p): collected.append(.ping(Array(p)))
                        case .pong(let p): collected.append(.pong(Array(p)))
                        case .close(let code, let reason): collected.append(.close(code?.rawValue, reason))
                        }
                        return true
                    }
                }
                for e in collected {
                    if case .ping(let p) = e { try? send(.pong, p) }
                }
                events.append(contentsOf: collected)
                if !events.isEmpty { break }
            }
            let left = deadline.timeIntervalSinceNow
            if left <= 0 { return nil }
            if try !socket.fill(timeout: left) { return nil }
        }
        return events.removeFirst()
    }

    /// The next JSON text message (skipping pings/pongs); throws on timeout or close.
    func nextJSON(timeout: TimeInterval = 3) throws -> ServerMessage {
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            guard let e = try next(timeout: max(0, deadline.timeIntervalSinceNow)) else { throw TestFailure("no message within \(timeout)s") }
            switch e {
            case .text(let t):
                guard let m = Array(t.utf8).withUnsafeBytes({ Envelope.decodeServer($0) }) else { throw TestFailure("not a server message: \(t)") }
                return m
            case .close(let c, let r): throw TestFailure("closed \(c.map(String.init) ?? "-") \(r)")
            default: continue
            }
        }
    }

    /// Collects JSON messages until `timeout` passes with none (for "exactly once" checks).
    func drainJSON(quiet: TimeInterval = 0.5) throws -> [ServerMessage] {
        var out: [ServerMessage] = []
        while true {
            guard let e = try next(timeout: quiet) else { return out }
            if case .text(let t) = e, let m = Array(t.utf8).withUnsafeBytes({ Envelope.decodeServer($0) }) { out.append(m) }
            if case .close = e { return out }
        }
    }

    /// Waits for a close frame; returns its code (nil = empty body). Throws on timeout.
    func expectClose(timeout: TimeInterval = 3) throws -> UInt16? {
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            guard let e = try next(timeout: max(0, deadline.timeIntervalSinceNow)) else { throw TestFailure("no close within \(timeout)s") }
            if case .close(let c, _) = e { return c }
        }
    }

    /// Counts room `message` frames until `timeout` passes with none (no JSON parsing: for floods).
    func countMessages(quiet: TimeInterval) throws -> Int {
        var n = 0
        while let e = try next(timeout: quiet) {
            if case .text(let t) = e, t.hasPrefix("{\"op\":\"message\"") { n += 1 }
            if case .close = e { return n }
        }
        return n
    }

    func join(_ room: String) throws -> ServerMessage {
        try sendOp("{\"op\":\"join\",\"room\":\"\(room)\"}")
        return try nextJSON()
    }
}
