import Foundation

/// Server -> client frames: each encoder returns compact JSON text bytes with "op" first and
/// strings JSON-escaped. Send them as text frames.
extension Envelope {
    /// `{"op":"hello","node":…,"session":…,"heartbeat":seconds, …extra}`: first frame after authentication;
    /// `heartbeat` is the server's ping interval in seconds; `extra` string fields follow in order.
    public static func hello(node: String, session: String, heartbeatSeconds: Int, extra: [(String, String)] = []) -> [UInt8] {
        var w = JSONObjectWriter(op: "hello")
        w.string("node", node)
        w.string("session", session)
        w.int("heartbeat", heartbeatSeconds)
        for (name, value) in extra { w.string(name, value) }
        return w.finish()
    }

    /// `{"op":"joined","room":…,"offset":…,"recovered":bool,"id":…?}`: `offset` is the room's position now;
    /// `recovered` tells whether every message after the client's `since` was replayed; `id` echoes the
    /// `join` frame's id.
    public static func joined(room: String, offset: String, recovered: Bool, id: JSONFragment? = nil) -> [UInt8] {
        var w = JSONObjectWriter(op: "joined")
        w.string("room", room)
        w.string("offset", offset)
        w.bool("recovered", recovered)
        if let id { w.raw("id", id) }
        return w.finish()
    }

    /// `{"op":"left","room":…,"id":…?}`: `id` echoes the `leave` frame's id.
    public static func left(room: String, id: JSONFragment? = nil) -> [UInt8] {
        var w = JSONObjectWriter(op: "left")
        w.string("room", room)
        if let id { w.raw("id", id) }
        return w.finish()
    }

    private static let messagePrefix = Array(#"{"op":"message","room":"#.utf8)
    private static let offsetKey = Array(#","offset":"#.utf8)
    private static let dataKey = Array(#","data":"#.utf8)

    /// `{"op":"message","room":…,"offset":…,"data":…}`: one room message; `data` is spliced in verbatim.
    /// Hot path (once per published message): a single allocation sized up front.
    public static func message(room: String, offset: String, data: JSONFragment) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(messagePrefix.count + offsetKey.count + dataKey.count + room.utf8.count + offset.utf8.count + data.bytes.count + 8)
        out.append(contentsOf: messagePrefix)
        appendJSONString(room, to: &out)
        out.append(contentsOf: offsetKey)
        appendJSONString(offset, to: &out)
        out.append(contentsOf: dataKey)
        out.append(contentsOf: data.bytes)
        out.append(UInt8(ascii: "}"))
        return out
    }

    /// `{"op":"ack","id":…,"offset":…}`: a publish was stored at `offset`; `id` echoes the
    /// client's id verbatim (omitted when nil).
    public static func ack(id: JSONFragment?, offset: String) -> [UInt8] {
        var w = JSONObjectWriter(op: "ack")
        if let id { w.raw("id", id) }
        w.string("offset", offset)
        return w.finish()
    }

    /// `{"op":"presence","room":…,"count":n,"users":u}`: the room's members (connections) across the
    /// cluster, and how many distinct authenticated users they belong to (connections without a user, as
    /// with authentication off, are in `count` only).
    public static func presence(room: String, count: Int, users: Int, id: JSONFragment? = nil) -> [UInt8] {
        var w = JSONObjectWriter(op: "presence")
        w.string("room", room)
        w.int("count", count)
        w.int("users", users)
        if let id { w.raw("id", id) }
        return w.finish()
    }

    /// `{"op":"error","code":…,"message":…,"id":…?, …extra}`: `id` echoes the failed frame's id;
    /// `extra` integer fields follow (e.g. `("retry_after_ms", 500)`).
    public static func error(_ code: ErrorCode, message: String, id: JSONFragment? = nil, extra: [(String, Int)] = []) -> [UInt8] {
        var w = JSONObjectWriter(op: "error")
        w.string("code", code.rawValue)
        w.string("message", message)
        if let id { w.raw("id", id) }
        for (name, value) in extra { w.int(name, value) }
        return w.finish()
    }

    /// The error frame for a failed ``decode(_:)``.
    public static func error(_ failure: EnvelopeError) -> [UInt8] {
        error(failure.code, message: failure.message, id: failure.id)
    }

    /// `{"op":"token_expiring","expires_in_ms":n}`: the session's token expires in `expiresInMs` milliseconds;
    /// send `auth` with a fresh token before then (docs/protocol.md, token lifecycle).
    public static func tokenExpiring(expiresInMs: Int) -> [UInt8] {
        var w = JSONObjectWriter(op: "token_expiring")
        w.int("expires_in_ms", expiresInMs)
        return w.finish()
    }

    /// `{"op":"reconnect","after_ms":n}`: sent before a drain close; reconnect after `afterMs` milliseconds.
    public static func reconnect(afterMs: Int) -> [UInt8] {
        var w = JSONObjectWriter(op: "reconnect")
        w.int("after_ms", afterMs)
        return w.finish()
    }

    /// Client side helpers (tests, bench): parse any server frame into a [String: Any]-free typed value.
    /// nil when malformed (not a JSON object, or no string `op`); fields of the wrong type are nil.
    public static func decodeServer(_ text: UnsafeRawBufferPointer) -> ServerMessage? {
        guard let object = JSONValue.parse(text) as? [String: Any],
            let opValue = object["op"], case .string(let op) = JSONValue(opValue)
        else { return nil }
        func string(_ name: String) -> String? {
            if let v = object[name], case .string(let s) = JSONValue(v) { return s }
            return nil
        }
        func int(_ name: String) -> Int? { object[name].flatMap { JSONValue($0).int } }
        var message = ServerMessage(op: op)
        message.room = string("room")
        message.offset = string("offset")
        message.data = object["data"].flatMap(JSONValue.fragment)
        message.id = object["id"].flatMap(JSONValue.fragment)
        message.code = string("code")
        message.count = int("count")
        message.users = int("users")
        if let v = object["recovered"], case .bool(let b) = JSONValue(v) { message.recovered = b }
        message.afterMs = int("after_ms")
        message.session = string("session")
        message.node = string("node")
        message.message = string("message")
        message.heartbeat = int("heartbeat")
        return message
    }
}
