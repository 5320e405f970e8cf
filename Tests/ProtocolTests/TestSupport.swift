@testable import Protocol

/// Bytes from hex text; spaces ignored: `hex("81 05 48")`.
func hex(_ text: String) -> [UInt8] {
    let digits = Array(text.utf8.filter { $0 != 0x20 && $0 != 0x0A })
    precondition(digits.count % 2 == 0, "odd hex")
    return stride(from: 0, to: digits.count, by: 2).map { UInt8(String(decoding: digits[$0...$0 + 1], as: UTF8.self), radix: 16)! }
}

/// An owned, comparable copy of a ``WebSocketEvent``.
enum Event: Equatable, CustomStringConvertible {
    case text(String)
    case binary([UInt8])
    case ping([UInt8])
    case pong([UInt8])
    case close(UInt16?, String)

    init(_ event: WebSocketEvent) {
        switch event {
        case .text(let b): self = .text(String(decoding: b, as: UTF8.self))
        case .binary(let b): self = .binary(Array(b))
        case .ping(let b): self = .ping(Array(b))
        case .pong(let b): self = .pong(Array(b))
        case .close(let code, let reason): self = .close(code?.rawValue, reason)
        }
    }

    var description: String {
        switch self {
        case .text(let s): "text(\(s.prefix(40)))"
        case .binary(let b): "binary(\(b.count))"
        case .ping(let b): "ping(\(b))"
        case .pong(let b): "pong(\(b))"
        case .close(let c, let r): "close(\(c.map(String.init) ?? "nil"), \(r))"
        }
    }
}

/// What feeding some input produced: the events in order, then the error if one was thrown.
struct Outcome: Equatable, CustomStringConvertible {
    var events: [Event] = []
    var error: ProtocolError?
    var description: String { "\(events) \(error.map { "\($0)" } ?? "ok")" }
}

/// Feeds `bytes` cut into `pieces` (a copy, since the reader unmasks in place).
func feed(_ pieces: [[UInt8]], role: WebSocketRole = .server, maxMessageSize: Int = 1 << 20, deflate: Inflater? = nil) -> (Outcome, WebSocketReader) {
    var reader = WebSocketReader(role: role, maxMessageSize: maxMessageSize, deflate: deflate)
    var outcome = Outcome()
    do {
        for piece in pieces {
            var copy = piece
            try copy.withUnsafeMutableBytes { raw in
                try reader.feed(raw) {
                    outcome.events.append(Event($0)); return true
                }
            }
        }
    } catch {
        outcome.error = (error as! ProtocolError)
    }
    return (outcome, reader)
}

/// Feeds `bytes` whole.
func feed(_ bytes: [UInt8], role: WebSocketRole = .server, maxMessageSize: Int = 1 << 20, deflate: Inflater? = nil) -> Outcome {
    feed([bytes], role: role, maxMessageSize: maxMessageSize, deflate: deflate).0
}

/// Every way of cutting `bytes` once, plus one byte at a time.
func allSplits(_ bytes: [UInt8]) -> [[[UInt8]]] {
    var result: [[[UInt8]]] = (0...bytes.count).map { [Array(bytes[..<$0]), Array(bytes[$0...])] }
    result.append(bytes.map { [$0] })
    return result
}

/// A client (masked) frame.
func clientFrame(_ opcode: Opcode, _ payload: [UInt8], fin: Bool = true, key: UInt32 = 0x37FA_213D) -> [UInt8] {
    FrameEncoder.frame(opcode: opcode, payload: payload, fin: fin, maskingKey: key)
}

func clientFrame(_ opcode: Opcode, _ text: String, fin: Bool = true, key: UInt32 = 0x37FA_213D) -> [UInt8] {
    clientFrame(opcode, Array(text.utf8), fin: fin, key: key)
}

/// Runs `body` with the bytes of `text` as a raw buffer.
func withBytes<R>(_ text: String, _ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
    try Array(text.utf8).withUnsafeBytes(body)
}

/// Parses a whole request head with a fresh parser.
func parseRequest(_ text: String, maxHeadBytes: Int = 8192, maxHeaderCount: Int = 100) throws(HTTPError) -> HTTPRequestHead {
    var parser = HTTPHeadParser(maxHeadBytes: maxHeadBytes, maxHeaderCount: maxHeaderCount)
    let bytes = Array(text.utf8)
    let result = try bytes.withUnsafeBytes { raw in Result { () throws(HTTPError) in try parser.feed(raw) } }.get()
    guard case .complete(let head, _) = result else { throw HTTPError(status: .badRequest, reason: "test: incomplete") }
    return head
}
