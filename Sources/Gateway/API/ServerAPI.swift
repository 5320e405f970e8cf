import ClusterBus
import Foundation
import Protocol
import Runtime

/// The server API on the admin port (docs/api.md): `POST /api/<method>` with `Authorization: Bearer
/// <--api-key>` and a JSON object body; every answer is JSON with `request_id` (also the `X-Request-ID`
/// header: the caller's, when it sent a valid one). Cluster-wide commands go over the bus's `ControlBus`
/// role and answer `affected` (connections changed on every node that answered) with `nodes` (answered /
/// reached). Bad input: 400 `{"op":"error","code":"bad_request","field":…,"message":…}`; an unknown user
/// or room is not an error (0 affected, empty lists).
enum ServerAPI {
    /// Every method, in docs/api.md and `switchboard ctl --help` order (a test checks all three agree).
    static let methods = ["publish", "broadcast", "disconnect", "subscribe", "unsubscribe", "presence", "history", "rooms", "info"]

    /// How long a cluster-wide command waits for the nodes' answers.
    static let controlTimeoutMs = 2000
    /// Largest page of `presence`, `history` and `rooms`.
    static let maxLimit = 1000
    /// Most rooms in one `broadcast`.
    static let maxBroadcastRooms = 100

    /// A refusal: HTTP status, error code, the field at fault (nil: the body as a whole) and a reason.
    struct Failure: Error {
        var status: HTTPStatus = .badRequest
        var code: ErrorCode = .badRequest
        var field: String?
        var message: String

        static func field(_ name: String, _ message: String) -> Failure { Failure(field: name, message: message) }
    }

    /// One API call in progress: where its answer goes.
    struct Call: Sendable {
        let node: GatewayNode
        let requestID: String
        let answer: @Sendable (HTTPStatus, String) -> Void

        /// Answers `fields` (JSON object members, already serialized, without braces) plus `request_id`.
        func ok(_ fields: String, status: HTTPStatus = .ok) {
            answer(status, "{\(fields)\(fields.isEmpty ? "" : ",")\"request_id\":\(js(requestID))}")
        }

        func fail(_ f: Failure) {
            var s = "{\"op\":\"error\",\"code\":\(js(f.code.rawValue)),\"message\":\(js(f.message))"
            if let field = f.field { s += ",\"field\":\(js(field))" }
            answer(f.status, s + ",\"request_id\":\(js(requestID))}")
        }

        func busFailed(_ e: BusError) {
            switch e {
            case .invalid(let why): fail(Failure(message: why))
            case .unavailable(let why): fail(Failure(status: .serviceUnavailable, code: .unavailable, message: why))
            case .unknown(let why):
                fail(Failure(status: .gatewayTimeout, code: .unknown, message: "outcome unknown: \(why); retry with the same idempotency_key"))
            }
        }
    }

    /// Runs `method` with `body`; `header` reads a request header (`Idempotency-Key`).
    static func handle(method: String, body: [UInt8], header: (String) -> String?, call: Call) {
        do throws(Failure) {
            let object = try parseObject(body)
            switch method {
            case "publish": try publish(object, body: body, headerKey: header("Idempotency-Key"), call)
            case "broadcast": try broadcast(object, headerKey: header("Idempotency-Key"), call)
            case "disconnect": try disconnect(object, call)
            case "subscribe", "unsubscribe": try membership(object, subscribe: method == "subscribe", call)
            case "presence": try presence(object, call)
            case "history": try history(object, call)
            case "rooms": try rooms(object, call)
            case "info": try info(object, call)
            default: throw Failure(status: .notFound, code: .unknownOp, message: "unknown API method '\(method)' (methods: \(methods.joined(separator: ", ")))")
            }
        } catch {
            call.fail(error)
        }
    }

    // MARK: - Input

    static func parseObject(_ body: [UInt8]) throws(Failure) -> [String: Any] {
        if body.allSatisfy({ $0 == 0x20 || $0 == 0x0A || $0 == 0x0D || $0 == 0x09 }) { return [:] }
        guard let any = try? JSONSerialization.jsonObject(with: Data(body), options: [.fragmentsAllowed]) else {
            // Foundation's parser also refuses nesting deeper than 512 levels (no recursion without bound).
            throw Failure(message: "body is not valid JSON, or nested deeper than 512 levels")
        }
        guard let object = any as? [String: Any] else { throw Failure(message: "body must be a JSON object") }
        return object
    }

    /// Typed access to the body's fields with field-level errors; unknown fields are refused (a typo must
    /// not silently fall back to a default).
    struct Fields {
        let object: [String: Any]

        init(_ object: [String: Any], allowed: Set<String>) throws(Failure) {
            self.object = object
            if let unknown = object.keys.sorted().first(where: { !allowed.contains($0) }) {
                throw .field(unknown, "unknown field '\(unknown)' (allowed: \(allowed.sorted().joined(separator: ", ")))")
            }
        }

        private func present(_ name: String) -> Any? {
            guard let v = object[name], !(v is NSNull) else { return nil }
            return v
        }

        func string(_ name: String, required: Bool = false, maxBytes: Int = 256) throws(Failure) -> String? {
            guard let v = present(name) else {
                if required { throw .field(name, "field '\(name)' is required") }
                return nil
            }
            guard let s = v as? String, !isNumber(v) else { throw .field(name, "field '\(name)' must be a string") }
            guard !s.isEmpty else { throw .field(name, "field '\(name)' must not be empty") }
            guard s.utf8.count <= maxBytes else { throw .field(name, "field '\(name)' is longer than \(maxBytes) bytes") }
            return s
        }

        func room(_ name: String = "room", required: Bool = true) throws(Failure) -> String? {
            guard let r = try string(name, required: required) else { return nil }
            guard Envelope.isValidRoomName(r) else { throw .field(name, "field '\(name)' is not a valid room name") }
            return r
        }

        func int(_ name: String, default value: Int, in range: ClosedRange<Int>) throws(Failure) -> Int {
            guard let v = present(name) else { return value }
            guard isNumber(v), let d = (v as? NSNumber)?.doubleValue, d == d.rounded(), let i = Int(exactly: d) else {
                throw .field(name, "field '\(name)' must be an integer")
            }
            guard range.contains(i) else { throw .field(name, "field '\(name)' must be in \(range.lowerBound)...\(range.upperBound)") }
            return i
        }

        func bool(_ name: String, default value: Bool) throws(Failure) -> Bool {
            guard let v = present(name) else { return value }
            guard !isNumber(v), let b = v as? Bool else { throw .field(name, "field '\(name)' must be true or false") }
            return b
        }

        /// Foundation on Linux bridges JSON true/false and numbers to NSNumber alike; the boolean ones are
        /// the shared `kCFBoolean` instances, told apart by their Objective-C type code "c".
        private func isNumber(_ v: Any) -> Bool {
            guard let n = v as? NSNumber else { return false }
            return String(cString: n.objCType) != "c"
        }
    }

    static func idempotencyKey(_ fields: Fields, header: String?) throws(Failure) -> String? {
        let body = try fields.string("idempotency_key", maxBytes: 200)
        if let header, header.isEmpty || header.utf8.count > 200 {
            throw .field("Idempotency-Key", "Idempotency-Key must be 1-200 bytes")
        }
        if let body, let header, body != header { throw .field("idempotency_key", "differs from the Idempotency-Key header") }
        return body ?? header
    }

    // MARK: - Methods

    /// `publish {room, data, idempotency_key?}` → 202 `{offset, affected}`; `affected`: member connections of
    /// the room in the cluster when it was published (presence).
    static func publish(_ object: [String: Any], body: [UInt8], headerKey: String?, _ call: Call) throws(Failure) {
        let fields = try Fields(object, allowed: ["room", "data", "idempotency_key"])
        let room = try fields.room()!
        guard object["data"] != nil else { throw .field("data", "field 'data' is required") }
        let key = try idempotencyKey(fields, header: headerKey)
        let request: ClientRequest
        do {
            request = try APIBody.decode(body)
        } catch {
            throw .field("data", error.message)
        }
        guard case .publish(_, let data, _) = request else { throw .field("data", "field 'data' is required") }
        call.node.apiPublishes.add()
        // "api:" keeps HTTP keys apart from the WebSocket sessions' keys in the same room.
        call.node.rooms.publish(room: room, data: data, idempotencyKey: key.map { "api:" + $0 }) { result in
            switch result {
            case .success(let offset):
                call.node.presence.presence(room: room) { p in
                    let members = (try? p.get())?.connections ?? 0
                    call.ok("\"offset\":\(js(offset.description)),\"affected\":\(members)", status: .accepted)
                }
            case .failure(let e):
                call.busFailed(e)
            }
        }
    }

    /// `broadcast {rooms, data, idempotency_key?}`: one payload to 1-100 rooms → `{results:[{room, offset} |
    /// {room, error}], affected}`. `data` is re-serialized compactly (key order kept by Foundation).
    static func broadcast(_ object: [String: Any], headerKey: String?, _ call: Call) throws(Failure) {
        let fields = try Fields(object, allowed: ["rooms", "data", "idempotency_key"])
        guard let list = object["rooms"] as? [Any] else {
            throw .field("rooms", object["rooms"] == nil ? "field 'rooms' is required" : "field 'rooms' must be an array of room names")
        }
        guard !list.isEmpty, list.count <= maxBroadcastRooms else { throw .field("rooms", "field 'rooms' must list 1-\(maxBroadcastRooms) rooms") }
        var rooms: [String] = []
        for item in list {
            guard let r = item as? String, Envelope.isValidRoomName(r) else { throw .field("rooms", "field 'rooms' holds an invalid room name") }
            if !rooms.contains(r) { rooms.append(r) }
        }
        guard let raw = object["data"] else { throw .field("data", "field 'data' is required") }
        guard let encoded = try? JSONSerialization.data(withJSONObject: raw, options: [.fragmentsAllowed, .withoutEscapingSlashes]) else {
            throw .field("data", "field 'data' is not encodable")
        }
        let data = JSONFragment(bytes: [UInt8](encoded))
        let key = try idempotencyKey(fields, header: headerKey)
        let results = Lock<[String: String]>([:])
        let affected = Lock<Int>(0)
        let remaining = Lock<Int>(rooms.count)
        let allRooms = rooms
        for room in rooms {
            call.node.apiPublishes.add()
            call.node.rooms.publish(room: room, data: data, idempotencyKey: key.map { "api:" + $0 }) { result in
                let finishOne: @Sendable (String) -> Void = { entry in
                    results.withLock { $0[room] = entry }
                    guard
                        remaining.withLock({
                            $0 -= 1; return $0
                        }) == 0
                    else { return }
                    let all = results.withLock { r in allRooms.map { r[$0]! } }
                    call.ok("\"results\":[\(all.joined(separator: ","))],\"affected\":\(affected.withLock { $0 })")
                }
                switch result {
                case .success(let offset):
                    call.node.presence.presence(room: room) { p in
                        let n = (try? p.get())?.connections ?? 0
                        affected.withLock { $0 += n }
                        finishOne("{\"room\":\(js(room)),\"offset\":\(js(offset.description))}")
                    }
                case .failure(let e):
                    finishOne("{\"room\":\(js(room)),\"error\":{\"code\":\(js(e.errorCode.rawValue)),\"message\":\(js(e.message))}}")
                }
            }
        }
    }

    /// `disconnect {user, code?, reason?, reconnect?}`: closes every connection of the user on every node.
    /// The client first gets `{"op":"disconnect","code","reason","reconnect"}`; `code` 1000 or 3000-4999
    /// (default 4009), `reconnect` default true.
    static func disconnect(_ object: [String: Any], _ call: Call) throws(Failure) {
        let fields = try Fields(object, allowed: ["user", "code", "reason", "reconnect"])
        let user = try fields.string("user", required: true)!
        let code = try fields.int("code", default: 4009, in: 1000...4999)
        guard code == 1000 || code >= 3000 else { throw .field("code", "field 'code' must be 1000 or in 3000...4999") }
        let reason = try fields.string("reason", maxBytes: 120) ?? ""
        let reconnect = try fields.bool("reconnect", default: true)
        control(ControlCommand(kind: .disconnect, user: user, code: code, reason: reason, reconnect: reconnect), call) { o in
            "\"affected\":\(o.affected)"
        }
    }

    /// `subscribe` / `unsubscribe {user, room}`: every room-protocol connection of the user joins (gets
    /// `joined` with the offset) or leaves (gets `left`); `affected` counts connections that changed.
    static func membership(_ object: [String: Any], subscribe: Bool, _ call: Call) throws(Failure) {
        let fields = try Fields(object, allowed: ["user", "room"])
        let user = try fields.string("user", required: true)!
        let room = try fields.room()!
        control(ControlCommand(kind: subscribe ? .subscribe : .unsubscribe, user: user, room: room), call) { o in
            "\"affected\":\(o.affected)"
        }
    }

    /// `presence {room, cursor?, limit?}` → `{room, connections, users, items:[{user, connections}], next}`:
    /// counts from the presence role, users paged in byte order (`next`: pass as `cursor`; null at the end).
    static func presence(_ object: [String: Any], _ call: Call) throws(Failure) {
        let fields = try Fields(object, allowed: ["room", "cursor", "limit"])
        let room = try fields.room()!
        let cursor = try fields.string("cursor")
        let limit = try fields.int("limit", default: 100, in: 1...maxLimit)
        call.node.presence.presence(room: room) { counted in
            guard case .success(let count) = counted else {
                if case .failure(let e) = counted { call.busFailed(e) }
                return
            }
            control(ControlCommand(kind: .presenceUsers, room: room, after: cursor, limit: limit), call) { o in
                let (items, more) = o.mergedItems(limit: limit)
                let list = items.map { "{\"user\":\(js($0.name)),\"connections\":\($0.count)}" }.joined(separator: ",")
                return "\"room\":\(js(room)),\"connections\":\(count.connections),\"users\":\(count.users),\"items\":[\(list)],"
                    + "\"next\":\(more ? js(items.last?.name ?? "") : "null")"
            }
        }
    }

    /// `history {room, from?, order?, limit?}` → `{room, messages:[{offset, data}], next}`: `order` "desc"
    /// (default, newest first, before `from`) or "asc" (oldest first, after `from`); `next` is the last
    /// offset returned when the page was full (pass it as `from`), else null.
    static func history(_ object: [String: Any], _ call: Call) throws(Failure) {
        let fields = try Fields(object, allowed: ["room", "from", "order", "limit"])
        let room = try fields.room()!
        var from: StreamOffset?
        if let text = try fields.string("from") {
            guard let o = StreamOffset(text) else { throw .field("from", "field 'from' is not an offset this server issued") }
            from = o
        }
        let order = try fields.string("order") ?? "desc"
        guard order == "asc" || order == "desc" else { throw .field("order", "field 'order' must be \"asc\" or \"desc\"") }
        let limit = try fields.int("limit", default: 100, in: 1...maxLimit)
        guard let reader = call.node.services.history else {
            throw Failure(status: .serviceUnavailable, code: .unavailable, message: "this bus does not read history")
        }
        reader.history(room: room, from: from, newestFirst: order == "desc", limit: limit) { result in
            switch result {
            case .success(let page):
                let list = page.messages.map { "{\"offset\":\(js($0.offset.description)),\"data\":\($0.data.description)}" }.joined(separator: ",")
                let next = page.messages.count == limit ? js(page.messages.last!.offset.description) : "null"
                call.ok("\"room\":\(js(room)),\"messages\":[\(list)],\"next\":\(next)")
            case .failure(.invalid(let why)):
                call.fail(.field("from", why))
            case .failure(let e):
                call.busFailed(e)
            }
        }
    }

    /// `rooms {pattern?, cursor?, limit?}` → `{rooms:[{room, connections}], next}`: rooms with members on
    /// any node, in byte order, `pattern` in `RoomPattern` syntax (`stream:*`, `org:**`).
    static func rooms(_ object: [String: Any], _ call: Call) throws(Failure) {
        let fields = try Fields(object, allowed: ["pattern", "cursor", "limit"])
        let pattern = try fields.string("pattern")
        let cursor = try fields.string("cursor")
        let limit = try fields.int("limit", default: 100, in: 1...maxLimit)
        control(ControlCommand(kind: .rooms, pattern: pattern, after: cursor, limit: limit), call) { o in
            let (items, more) = o.mergedItems(limit: limit)
            let list = items.map { "{\"room\":\(js($0.name)),\"connections\":\($0.count)}" }.joined(separator: ",")
            return "\"rooms\":[\(list)],\"next\":\(more ? js(items.last?.name ?? "") : "null")"
        }
    }

    /// `info {}` → `{version, connections, nodes:[{id, address, state, connections, uptime_s, self}]}`:
    /// this node live, the others from the registry (their last heartbeat).
    static func info(_ object: [String: Any], _ call: Call) throws(Failure) {
        _ = try Fields(object, allowed: [])
        let node = call.node
        let me = ClusterNode(
            id: node.config.nodeID,
            info: NodeInfo(
                address: "\(node.config.host):\(node.boundPort)",
                startedAtMilliseconds: wallClockMilliseconds() - UInt64(node.uptimeSeconds * 1000),
                connections: node.loops.reduce(0) { $0 + $1.metrics.connectionsOpen.load() },
                draining: node.isDraining))
        node.control.otherNodes { result in
            let others = (try? result.get()) ?? []
            let now = wallClockMilliseconds()
            let all = [me] + others
            let list = all.map { n in
                let uptime = now > n.info.startedAtMilliseconds ? Int(now - n.info.startedAtMilliseconds) / 1000 : 0
                return "{\"id\":\(js(n.id)),\"address\":\(js(n.info.address)),\"state\":\"\(n.info.draining ? "draining" : "ready")\","
                    + "\"connections\":\(n.info.connections),\"uptime_s\":\(uptime),\"self\":\(n.id == me.id)}"
            }.joined(separator: ",")
            let bus = GatewayNode.busKind(node.config)
            call.ok(
                "\"version\":\(js(switchboardVersion)),\"bus\":\"\(bus)\",\"bus_state\":\"\(node.services.state.rawValue)\","
                    + "\"connections\":\(all.reduce(0) { $0 + $1.info.connections }),\"nodes\":[\(list)]"
                    + (result.isFailure ? ",\"warning\":\"node registry unreadable: only this node is listed\"" : ""))
        }
    }

    // MARK: - Helpers

    static func control(_ command: ControlCommand, _ call: Call, _ fields: @escaping @Sendable (ControlOutcome) -> String) {
        call.node.control.sendControl(command, timeoutMilliseconds: controlTimeoutMs) { result in
            switch result {
            case .success(let o): call.ok(fields(o) + "," + nodes(o))
            case .failure(let e): call.busFailed(e)
            }
        }
    }

    /// `"nodes":{"answered":n,"reached":m}`.
    static func nodes(_ o: ControlOutcome) -> String { "\"nodes\":{\"answered\":\(o.answers.count),\"reached\":\(o.expectedNodes)}" }
}

/// A JSON string literal.
func js(_ s: String) -> String { JSONFragment.string(s).description }

extension Result {
    var isFailure: Bool { if case .failure = self { true } else { false } }
}
