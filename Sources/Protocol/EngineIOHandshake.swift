/// The data of the Engine.IO v4 open packet (socketio/engine.io-protocol, revision 4, "Handshake"):
/// `0{"sid":"…","upgrades":["websocket"],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}`.
public struct EngineIOOpen: Equatable, Sendable {
    /// The Engine.IO session id (not the Socket.IO socket id); the `sid` query parameter of later requests.
    public var sid: String
    /// Transports the client may upgrade to: `["websocket"]` on polling, `[]` on a WebSocket.
    public var upgrades: [String]
    /// Milliseconds between server pings (reference default 25,000).
    public var pingInterval: Int
    /// Milliseconds the client has to answer a ping (reference default 20,000).
    public var pingTimeout: Int
    /// Largest packet or polling body, in bytes, the server accepts (reference default 1,000,000).
    public var maxPayload: Int

    /// All fields given.
    public init(sid: String, upgrades: [String], pingInterval: Int, pingTimeout: Int, maxPayload: Int) {
        self.sid = sid
        self.upgrades = upgrades
        self.pingInterval = pingInterval
        self.pingTimeout = pingTimeout
        self.maxPayload = maxPayload
    }

    /// The open packet carrying this data as compact JSON, keys in the order above.
    public var packet: EngineIOPacket {
        var out: [UInt8] = Array(#"{"sid":"#.utf8)
        appendJSONString(sid, to: &out)
        out.append(contentsOf: #","upgrades":["#.utf8)
        for (i, upgrade) in upgrades.enumerated() {
            if i > 0 { out.append(UInt8(ascii: ",")) }
            appendJSONString(upgrade, to: &out)
        }
        out.append(contentsOf: #"],"pingInterval":"#.utf8)
        appendDecimal(pingInterval, to: &out)
        out.append(contentsOf: #","pingTimeout":"#.utf8)
        appendDecimal(pingTimeout, to: &out)
        out.append(contentsOf: #","maxPayload":"#.utf8)
        appendDecimal(maxPayload, to: &out)
        out.append(UInt8(ascii: "}"))
        return .open(out)
    }
}

/// An Engine.IO transport (the `transport` query parameter).
public enum EngineIOTransport: String, Equatable, Sendable {
    /// HTTP long-polling: GET to receive, POST to send.
    case polling
    /// One WebSocket; also the upgrade target of a polling session.
    case websocket
}

/// What an Engine.IO request asks for, read from its query string: `EIO=4&transport=polling|websocket[&sid=…]`.
public struct EngineIORequest: Equatable, Sendable {
    /// The transport asked for.
    public var transport: EngineIOTransport
    /// The session to continue (a poll, a POST, or a WebSocket upgrading a polling session); nil for a new session.
    public var sid: String?

    /// The protocol version served: Engine.IO 4 (socket.io-client 3.x and 4.x).
    public static let supportedVersion = 4

    /// All fields given.
    public init(transport: EngineIOTransport, sid: String?) {
        self.transport = transport
        self.sid = sid
    }

    /// Reads `EIO`, `transport` and `sid` from `head`'s query.
    ///
    /// Errors (an ``EngineIOHandshakeError``, answered with HTTP 400): `EIO` missing, not `4`
    /// (e.g. `EIO=3` from socket.io-client 2.x) → `unsupportedProtocolVersion`, whose body names
    /// the supported version; `transport` missing or unknown → `unknownTransport`; an empty `sid` →
    /// `badRequest`. Whether the sid exists, and the method, are the caller's checks
    /// (`unknownSessionID`, `badHandshakeMethod`).
    public static func parse(_ head: HTTPRequestHead) throws(EngineIOHandshakeError) -> EngineIORequest {
        guard let eio = head.queryParameter("EIO"), eio == String(supportedVersion) else {
            let got = head.queryParameter("EIO").map { "EIO=\($0.prefix(16))" } ?? "no EIO parameter"
            throw EngineIOHandshakeError(
                .unsupportedProtocolVersion,
                detail: "\(got); this server speaks Engine.IO protocol 4 only (EIO=4: socket.io-client 3.x and 4.x, python-socketio 5.x)")
        }
        guard let name = head.queryParameter("transport"), let transport = EngineIOTransport(rawValue: name) else {
            throw EngineIOHandshakeError(.unknownTransport, detail: "transport must be polling or websocket")
        }
        let sid = head.queryParameter("sid")
        if let sid, sid.isEmpty { throw EngineIOHandshakeError(.badRequest, detail: "empty sid") }
        return EngineIORequest(transport: transport, sid: sid)
    }
}

/// An Engine.IO request refused at the HTTP level, with the reference server's error codes
/// (engine.io `Server.errors`): the body is `{"code":5,"message":"Unsupported protocol version","detail":"…"}`.
///
/// Clients read `code` and `message`; `detail` is our addition saying what to change.
public struct EngineIOHandshakeError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The reference error codes.
    public enum Code: Int, Sendable {
        /// 0 "Transport unknown".
        case unknownTransport = 0
        /// 1 "Session ID unknown": a poll or POST for a sid this node does not hold (the client reconnects).
        case unknownSessionID = 1
        /// 2 "Bad handshake method": a new session opened with something other than GET.
        case badHandshakeMethod = 2
        /// 3 "Bad request": e.g. a malformed polling body, a second concurrent poll.
        case badRequest = 3
        /// 4 "Forbidden": refused by a policy (origin, admission).
        case forbidden = 4
        /// 5 "Unsupported protocol version".
        case unsupportedProtocolVersion = 5

        /// The reference message, e.g. "Session ID unknown".
        public var message: String {
            switch self {
            case .unknownTransport: "Transport unknown"
            case .unknownSessionID: "Session ID unknown"
            case .badHandshakeMethod: "Bad handshake method"
            case .badRequest: "Bad request"
            case .forbidden: "Forbidden"
            case .unsupportedProtocolVersion: "Unsupported protocol version"
            }
        }
    }

    /// The reference code.
    public var code: Code
    /// Our explanation, e.g. "EIO=3; this server speaks Engine.IO protocol 4 only (…)".
    public var detail: String

    /// An error with `code` and `detail`.
    public init(_ code: Code, detail: String) {
        self.code = code
        self.detail = detail
    }

    /// 403 for `forbidden`, 400 for every other code (as the reference server answers).
    public var status: HTTPStatus { code == .forbidden ? .forbidden : .badRequest }

    /// The JSON body: `{"code":…,"message":"…","detail":"…"}`.
    public var body: [UInt8] {
        var out: [UInt8] = Array(#"{"code":"#.utf8)
        appendDecimal(code.rawValue, to: &out)
        out.append(contentsOf: #","message":"#.utf8)
        appendJSONString(code.message, to: &out)
        out.append(contentsOf: #","detail":"#.utf8)
        appendJSONString(detail, to: &out)
        out.append(UInt8(ascii: "}"))
        return out
    }

    /// The whole answer: ``status`` with the JSON ``body`` (`Content-Type: application/json`).
    public var response: HTTPResponse { .json(status, body) }

    /// "400 Bad Request: Unsupported protocol version (EIO=3; …)".
    public var description: String { "\(status): \(code.message) (\(detail))" }
}
