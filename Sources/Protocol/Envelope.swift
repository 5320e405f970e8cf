import Foundation

/// Switchboard's client protocol: JSON text frames, every frame an object with an `op` field.
///
/// Client -> server: `auth {token}`, `join {room, since?}`, `leave {room}`, `publish {room, data, id?}`,
/// `presence {room}`, `analytics {event, data?}`.
/// Server -> client: `hello {node, session, heartbeat}`, `joined {room, offset, recovered}`, `left {room}`,
/// `message {room, offset, data}`, `ack {id, offset}`, `presence {room, count}`, `error {code, message, id?}`,
/// `reconnect {after_ms}`.
///
/// JSON parsing uses Foundation's JSONSerialization; outgoing frames are built by byte appends
/// (compact, `op` first). For optional fields, JSON `null` counts as absent.
public enum Envelope {
    /// Parses one client frame. Errors: malformed JSON / not an object / missing or mistyped field -> badRequest with a
    /// message naming the field (e.g. "field 'room' must be a string"); unknown op -> unknownOp ("unknown op 'x'").
    /// Room names must pass isValidRoomName (else invalidRoom). When the frame had an "id", it is carried in the error.
    ///
    /// `id`, accepted on every op, must be a JSON string or number ("field 'id' must be a string or
    /// number" otherwise). `data` and `id` come back as compact ``JSONFragment``s.
    public static func decode(_ text: UnsafeRawBufferPointer) throws(EnvelopeError) -> ClientRequest {
        try decodeWithID(text).request
    }

    /// As ``decode(_:)``, also returning the frame's `id` (for every op, so answers and errors can echo it).
    public static func decodeWithID(_ text: UnsafeRawBufferPointer) throws(EnvelopeError) -> (request: ClientRequest, id: JSONFragment?) {
        var id: JSONFragment?
        let request = try decodeRequest(text, id: &id)
        return (request, id)
    }

    private static func decodeRequest(_ text: UnsafeRawBufferPointer, id: inout JSONFragment?) throws(EnvelopeError) -> ClientRequest {
        guard let parsed = JSONValue.parse(text) else { throw EnvelopeError(code: .badRequest, message: "malformed JSON") }
        guard let object = parsed as? [String: Any] else {
            throw EnvelopeError(code: .badRequest, message: "frame must be a JSON object")
        }
        if let rawID = object["id"] {
            switch JSONValue(rawID) {
            case .string, .number: id = JSONValue.fragment(rawID)
            case .null: break
            default: throw EnvelopeError(code: .badRequest, message: "field 'id' must be a string or number")
            }
        }
        func fail(_ code: ErrorCode, _ message: String) -> EnvelopeError {
            EnvelopeError(code: code, message: message, id: id)
        }
        func string(_ name: String, required: Bool = true) throws(EnvelopeError) -> String? {
            guard let value = object[name], !(value is NSNull) else {
                if required { throw fail(.badRequest, "field '\(name)' is required") }
                return nil
            }
            guard case .string(let s) = JSONValue(value) else { throw fail(.badRequest, "field '\(name)' must be a string") }
            return s
        }
        func room() throws(EnvelopeError) -> String {
            let room = try string("room")!
            guard isValidRoomName(room) else {
                throw fail(.invalidRoom, "room must be 1-200 printable ASCII characters without space, quote or backslash")
            }
            return room
        }
        func data(required: Bool) throws(EnvelopeError) -> JSONFragment? {
            guard let value = object["data"], required || !(value is NSNull) else {
                if required { throw fail(.badRequest, "field 'data' is required") }
                return nil
            }
            guard let fragment = JSONValue.fragment(value) else { throw fail(.badRequest, "field 'data' is not valid JSON") }
            return fragment
        }

        guard let op = try string("op") else { throw fail(.badRequest, "field 'op' is required") }
        switch op {
        case "auth": return .auth(token: try string("token")!)
        case "join":
            let room = try room()
            return .join(room: room, since: try string("since", required: false))
        case "leave": return .leave(room: try room())
        case "publish":
            let room = try room()
            return .publish(room: room, data: try data(required: true)!, id: id)
        case "presence": return .presence(room: try room())
        case "analytics":
            let event = try string("event")!
            guard (1...200).contains(event.utf8.count) else { throw fail(.badRequest, "field 'event' must be 1-200 bytes") }
            var analyticsRoom: String? = nil
            if object["room"] != nil && !(object["room"] is NSNull) { analyticsRoom = try room() }
            return .analytics(event: event, data: try data(required: false), room: analyticsRoom)
        default:
            let shown = op.utf8.count <= 64 ? op : String(decoding: Array(op.utf8.prefix(64)), as: UTF8.self)
            throw fail(.unknownOp, "unknown op '\(shown)'")
        }
    }

    /// 1...200 bytes of printable ASCII other than space, '"', '\\' (so room names never need JSON escaping).
    public static func isValidRoomName(_ room: String) -> Bool {
        let utf8 = room.utf8
        guard (1...200).contains(utf8.count) else { return false }
        return utf8.allSatisfy { $0 > 0x20 && $0 < 0x7F && $0 != UInt8(ascii: "\"") && $0 != UInt8(ascii: "\\") }
    }

    /// Client side: the compact JSON text of `request` ("op" first), as a test client or the bench tool sends it.
    public static func encode(_ request: ClientRequest) -> [UInt8] {
        var w = JSONObjectWriter(op: opName(request))
        switch request {
        case .auth(let token): w.string("token", token)
        case .join(let room, let since):
            w.string("room", room)
            if let since { w.string("since", since) }
        case .leave(let room): w.string("room", room)
        case .publish(let room, let data, let id):
            w.string("room", room)
            w.raw("data", data)
            if let id { w.raw("id", id) }
        case .presence(let room): w.string("room", room)
        case .analytics(let event, let data, let room):
            w.string("event", event)
            if let data { w.raw("data", data) }
            if let room { w.string("room", room) }
        }
        return w.finish()
    }

    private static func opName(_ request: ClientRequest) -> String {
        switch request {
        case .auth: "auth"
        case .join: "join"
        case .leave: "leave"
        case .publish: "publish"
        case .presence: "presence"
        case .analytics: "analytics"
        }
    }
}
