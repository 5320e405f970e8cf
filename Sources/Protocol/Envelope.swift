/// Switchboard's client protocol: JSON text frames, every frame an object with an `op` field.
///
/// Client -> server: `auth {token}`, `join {room, since?}`, `leave {room}`, `publish {room, data, id?}`,
/// `presence {room}`, `analytics {event, data?}`, `rpc {method, data?, id}`.
/// Server -> client: `hello {node, session, heartbeat}`, `joined {room, offset, recovered}`, `left {room}`,
/// `message {room, offset, data}`, `ack {id, offset}`, `presence {room, count}`, `error {code, message, id?}`,
/// `reconnect {after_ms}`.
///
/// Client frames are read by our own single-pass scanner (``JSONScanner``): only the envelope's fields
/// are decoded, `data` is carried as validated raw JSON. Server frames a client reads
/// (``decodeServer(_:)``) use Foundation's JSONSerialization. Outgoing frames are built by byte
/// appends (compact, `op` first). For optional fields, JSON `null` counts as absent.
public enum Envelope {
    /// Parses one client frame. Errors: malformed JSON / not an object / missing or mistyped field -> badRequest with a
    /// message naming the field (e.g. "field 'room' must be a string"); unknown op -> unknownOp ("unknown op 'x'").
    /// Room names must pass isValidRoomName (else invalidRoom). When the frame had an "id", it is carried in the error.
    ///
    /// `id`, accepted on every op, must be a JSON string or number ("field 'id' must be a string or
    /// number" otherwise). `data` and `id` come back as ``JSONFragment``s (see ``decodeWithID(_:maxDepth:)``).
    public static func decode(_ text: UnsafeRawBufferPointer, maxDepth: Int = defaultMaxDepth) throws(EnvelopeError) -> ClientRequest {
        try decodeWithID(text, maxDepth: maxDepth).request
    }

    /// Deepest nesting of containers accepted inside one field's value (`"data":[]` is 1 level): 64.
    public static let defaultMaxDepth = 64

    /// As ``decode(_:maxDepth:)``, also returning the frame's `id` (for every op, so answers and errors can echo it).
    ///
    /// One pass over the text (``JSONScanner``, RFC 8259): only the envelope's own fields (`op`, `room`,
    /// `id`, `since`, `token`, `event`, `method`) are decoded; `data` and unknown fields are validated without
    /// building them, and `data` is returned as its own bytes with insignificant whitespace removed
    /// (key order, escapes and number spelling as the client sent them). Work and memory are linear
    /// in the frame's size.
    ///
    /// - Parameter maxDepth: deepest container nesting inside a field's value, default 64; deeper
    ///   -> badRequest "data nested deeper than 64 levels" ("JSON nested …" for other fields or a
    ///   frame that is not an object), raised as soon as the level is reached; clamped to
    ///   1...65,536. Syntax and depth errors carry no `id` (the scan stopped, maybe before it).
    ///   The frame's bytes are not copied except `data`, `id` and the decoded strings.
    /// - Duplicate envelope keys (`op`, `room`, `id`, `since`, `token`, `event`, `data`; after
    ///   escapes are resolved) are refused with badRequest "duplicate field 'room'", carrying the `id`
    ///   unless `id` is the duplicate. Other keys may repeat (they are ignored).
    /// - Refused as malformed JSON beyond RFC 8259's grammar (see ``JSONScanner``): unpaired
    ///   surrogate escapes and numbers that overflow a Double. A byte order mark is malformed.
    public static func decodeWithID(_ text: UnsafeRawBufferPointer, maxDepth: Int = defaultMaxDepth) throws(EnvelopeError) -> (
        request: ClientRequest, id: JSONFragment?
    ) {
        var scanner = JSONScanner(text, maxDepth: maxDepth)
        let fields = try scanFields(&scanner)
        var id: JSONFragment?
        let request = try decodeRequest(fields, scanner, id: &id)
        return (request, id)
    }

    /// The envelope's own keys, indexed by `Field`'s raw values (for messages).
    private static let fieldNames: [String] = ["op", "room", "id", "since", "token", "event", "data", "method"]
    private enum Field: Int { case op, room, id, since, token, event, data, method }

    /// Where each envelope field's value lies in the frame.
    private struct Span {
        /// The value's bytes (strings with their quotes).
        var range: Range<Int>
        /// Its first byte: `"`, `{`, `[`, `t`, `f`, `n`, `-` or a digit.
        var first: UInt8
        /// A string value containing a backslash escape.
        var hasEscapes: Bool
        /// Insignificant whitespace inside the value.
        var hasWhitespace: Bool
    }

    /// One stored property a field rather than an array: no heap allocation per frame.
    private struct EnvelopeFields {
        var op, room, id, since, token, event, data, method: Span?
        /// The first envelope key seen twice.
        var duplicate: Field?

        subscript(_ field: Field) -> Span? {
            get {
                switch field {
                case .op: op
                case .room: room
                case .id: id
                case .since: since
                case .token: token
                case .event: event
                case .data: data
                case .method: method
                }
            }
            set {
                switch field {
                case .op: op = newValue
                case .room: room = newValue
                case .id: id = newValue
                case .since: since = newValue
                case .token: token = newValue
                case .event: event = newValue
                case .data: data = newValue
                case .method: method = newValue
                }
            }
        }
    }

    /// Scans the whole frame: a top-level object whose members are all validated, the envelope's
    /// located. Throws the syntax errors (malformed JSON, not an object, too deep).
    private static func scanFields(_ s: inout JSONScanner) throws(EnvelopeError) -> EnvelopeFields {
        let depthMessage = "JSON nested deeper than \(s.maxDepth) levels"
        func malformed() -> EnvelopeError { EnvelopeError(code: .badRequest, message: "malformed JSON") }
        s.skipWhitespace()
        guard s.byte(s.position) == UInt8(ascii: "{") else {
            // Not an object: say whether it is JSON at all.
            do throws(JSONScanner.Failure) {
                _ = try s.scanValue()
                s.skipWhitespace()
                guard s.atEnd else { throw .malformed }
            } catch {
                throw error == .tooDeep ? EnvelopeError(code: .badRequest, message: depthMessage) : malformed()
            }
            throw EnvelopeError(code: .badRequest, message: "frame must be a JSON object")
        }
        var fields = EnvelopeFields()
        s.position += 1
        s.skipWhitespace()
        if s.byte(s.position) == UInt8(ascii: "}") {
            s.position += 1
        } else {
            while true {
                guard s.byte(s.position) == UInt8(ascii: "\"") else { throw malformed() }
                let keyStart = s.position
                do throws(JSONScanner.Failure) { try s.scanString() } catch { throw malformed() }
                let field = identify(s, keyStart + 1..<s.position - 1, hasEscapes: s.lastStringHadEscape)
                s.skipWhitespace()
                guard s.byte(s.position) == UInt8(ascii: ":") else { throw malformed() }
                s.position += 1
                s.skipWhitespace()
                let valueStart = s.position
                s.sawWhitespace = false
                let first: UInt8
                do throws(JSONScanner.Failure) {
                    first = try s.scanValue()
                } catch {
                    guard error == .tooDeep else { throw malformed() }
                    let message = field == .data ? "data nested deeper than \(s.maxDepth) levels" : depthMessage
                    throw EnvelopeError(code: .badRequest, message: message)
                }
                if let field {
                    if fields[field] == nil {
                        fields[field] = Span(
                            range: valueStart..<s.position, first: first,
                            hasEscapes: first == UInt8(ascii: "\"") && s.lastStringHadEscape,
                            hasWhitespace: s.sawWhitespace)
                    } else if fields.duplicate == nil {
                        fields.duplicate = field
                    }
                }
                s.skipWhitespace()
                let next = s.byte(s.position)
                s.position += 1
                if next == UInt8(ascii: "}") { break }
                guard next == UInt8(ascii: ",") else { throw malformed() }
                s.skipWhitespace()
            }
        }
        s.skipWhitespace()
        guard s.atEnd else { throw malformed() }
        return fields
    }

    /// Which envelope key the key text in `range` (between its quotes) names, if any.
    private static func identify(_ s: JSONScanner, _ range: Range<Int>, hasEscapes: Bool) -> Field? {
        // The longest envelope key is 6 bytes, at most 36 when every character is a \u escape.
        guard range.count <= (hasEscapes ? 36 : 6) else { return nil }
        var packed: UInt64 = 1  // a leading 1 byte, so that "\u0000op" is not "op"
        if hasEscapes {
            let name = s.decodeString(range, hasEscapes: true).utf8
            guard name.count <= 6 else { return nil }
            for b in name { packed = packed << 8 | UInt64(b) }
        } else {
            for b in s.bytes(range) { packed = packed << 8 | UInt64(b) }
        }
        // The key's bytes, first byte most significant: one integer compare a key instead of String ones.
        switch packed {
        case 0x01_6F70: return .op  // "op"
        case 0x01_726F_6F6D: return .room  // "room"
        case 0x01_6964: return .id  // "id"
        case 0x0173_696E_6365: return .since  // "since"
        case 0x0174_6F6B_656E: return .token  // "token"
        case 0x0165_7665_6E74: return .event  // "event"
        case 0x01_6461_7461: return .data  // "data"
        case 0x01_6D65_7468_6F64: return .method  // "method"
        default: return nil
        }
    }

    private static func decodeRequest(_ fields: EnvelopeFields, _ s: JSONScanner, id: inout JSONFragment?) throws(EnvelopeError) -> ClientRequest {
        let isNull = UInt8(ascii: "n")
        if let span = fields[.id], fields.duplicate != .id {
            switch span.first {
            case UInt8(ascii: "\""), UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
                id = JSONFragment(bytes: Array(s.bytes(span.range)))
            case isNull: break
            default: throw EnvelopeError(code: .badRequest, message: "field 'id' must be a string or number")
            }
        }
        func fail(_ code: ErrorCode, _ message: String) -> EnvelopeError {
            EnvelopeError(code: code, message: message, id: id)
        }
        if let duplicate = fields.duplicate {
            throw fail(.badRequest, "duplicate field '\(fieldNames[duplicate.rawValue])'")
        }
        func string(_ field: Field, required: Bool = true) throws(EnvelopeError) -> String? {
            let name = fieldNames[field.rawValue]
            guard let span = fields[field], span.first != isNull else {
                if required { throw fail(.badRequest, "field '\(name)' is required") }
                return nil
            }
            guard span.first == UInt8(ascii: "\"") else { throw fail(.badRequest, "field '\(name)' must be a string") }
            return s.decodeString(span.range.lowerBound + 1..<span.range.upperBound - 1, hasEscapes: span.hasEscapes)
        }
        func room() throws(EnvelopeError) -> String {
            let room = try string(.room)!
            guard isValidRoomName(room) else {
                throw fail(.invalidRoom, "room must be 1-200 printable ASCII characters without space, quote or backslash")
            }
            return room
        }
        func data(required: Bool) throws(EnvelopeError) -> JSONFragment? {
            guard let span = fields[.data], required || span.first != isNull else {
                if required { throw fail(.badRequest, "field 'data' is required") }
                return nil
            }
            return JSONFragment(bytes: span.hasWhitespace ? s.compacted(span.range) : Array(s.bytes(span.range)))
        }

        guard let op = try string(.op) else { throw fail(.badRequest, "field 'op' is required") }
        switch op {
        case "auth": return .auth(token: try string(.token)!)
        case "join":
            let room = try room()
            return .join(room: room, since: try string(.since, required: false))
        case "leave": return .leave(room: try room())
        case "publish":
            let room = try room()
            return .publish(room: room, data: try data(required: true)!, id: id)
        case "presence": return .presence(room: try room())
        case "analytics":
            let event = try string(.event)!
            guard (1...200).contains(event.utf8.count) else { throw fail(.badRequest, "field 'event' must be 1-200 bytes") }
            var analyticsRoom: String? = nil
            if let span = fields[.room], span.first != isNull { analyticsRoom = try room() }
            return .analytics(event: event, data: try data(required: false), room: analyticsRoom)
        case "rpc":
            let method = try string(.method)!
            guard (1...200).contains(method.utf8.count) else { throw fail(.badRequest, "field 'method' must be 1-200 bytes") }
            guard id != nil else { throw fail(.badRequest, "field 'id' is required (rpc_result echoes it)") }
            return .rpc(method: method, data: try data(required: false))
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
        case .rpc(let method, let data):
            w.string("method", method)
            if let data { w.raw("data", data) }
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
        case .rpc: "rpc"
        }
    }
}
