import Protocol
import Runtime

/// A wire protocol spoken over an open WebSocket connection, chosen by the upgrade's path: the JSON room
/// protocol (`--ws-path`), verbatim echo (`--echo-path`), and later others (Socket.IO). A new protocol is a new
/// conforming type, not edits across `Connection`.
///
/// Personalities are shared by every connection that speaks them (no per-connection allocation); what a
/// connection must remember lives on the connection (rooms, auth, analytics budget). Loop thread only.
protocol Personality: AnyObject, Sendable {
    /// The `protocol` label of its log lines and metrics: `rooms`, `echo`, `socketio`.
    var name: String { get }
    /// The limits its connections run under on `loop`.
    func limits(on loop: GatewayLoop) -> ConnectionLimits
    /// The 101 was queued (e.g. send `hello`).
    func opened(_ c: Connection)
    /// A complete text message (UTF-8 already validated, RFC 6455 §8.1); valid only during the call.
    func text(_ c: Connection, _ payload: UnsafeRawBufferPointer)
    /// A complete binary message; valid only during the call.
    func binary(_ c: Connection, _ payload: UnsafeRawBufferPointer)
    /// The node drains: tell the client when to come back, before the 1012 close.
    func draining(_ c: Connection, afterMs: Int)
}

/// Every personality the gateway speaks; a connection stores its index (one byte).
enum Personalities {
    static let rooms: UInt8 = 0
    static let echo: UInt8 = 1
    static let socketIO: UInt8 = 2
    static let all: [any Personality] = [RoomProtocol.shared, EchoProtocol.shared, SocketIOProtocol.shared]
}

/// `--echo-path`: every message comes back as it was sent (conformance runs, e.g. Autobahn|Testsuite).
final class EchoProtocol: Personality {
    static let shared = EchoProtocol()
    let name = "echo"

    func limits(on loop: GatewayLoop) -> ConnectionLimits { loop.echoLimits }
    func opened(_ c: Connection) {}
    func text(_ c: Connection, _ payload: UnsafeRawBufferPointer) { c.enqueueFrame(c.frame(.text, payload)) }
    func binary(_ c: Connection, _ payload: UnsafeRawBufferPointer) { c.enqueueFrame(c.frame(.binary, payload)) }
    func draining(_ c: Connection, afterMs: Int) {}
}
