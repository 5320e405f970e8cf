import ClusterBus
import Foundation
import Glibc
import Protocol
import Runtime

/// One HTTP/1.1 request on the admin port (`/health`, `/ready`, `/metrics`, `POST /api/publish`), answered
/// and closed (`Connection: close`). The admin port is separate so metrics and the publish API are never
/// reachable on the public WebSocket port.
final class AdminConnection: StreamSocket, TimerTarget, @unchecked Sendable {
    private var parser = HTTPHeadParser(maxHeadBytes: 8192, maxHeaderCount: 100)
    private var head: HTTPRequestHead?
    private var body: [UInt8] = []
    private var expectedBody = 0
    private var answered = false
    private(set) var timerGeneration: UInt32 = 0
    /// Largest accepted request body (the publish API).
    static let maxBody = 1 << 20

    /// The gateway loop this socket belongs to (its context; no extra pointer per socket).
    var loop: GatewayLoop { unsafeDowncast(context, to: GatewayLoop.self) }

    init(loop: GatewayLoop, fd: CInt) { super.init(context: loop, fd: fd, transport: loop.adminTransport(fd: fd)) }

    func start() {
        guard register() else { return }
        loop.loop.schedule(self, generation: timerGeneration, deadline: loop.loop.now + 10_000)
    }

    func timerFired(now: UInt64) { resetSocket() }

    override func received(_ bytes: UnsafeMutableRawBufferPointer) {
        guard !answered else { return }
        var rest = UnsafeRawBufferPointer(bytes)
        if head == nil {
            do {
                switch try parser.feed(rest) {
                case .needMore: return
                case .complete(let h, let consumed):
                    head = h
                    rest = UnsafeRawBufferPointer(rebasing: rest[consumed...])
                    // RFC 9112 §6.3: both framings at once, or differing lengths, are a smuggling vector: 400.
                    if h.headers["Transfer-Encoding"] != nil && h.headers["Content-Length"] != nil {
                        return respond(HTTPResponse(error: HTTPError(status: .badRequest, reason: "both Content-Length and Transfer-Encoding", headers: [])))
                    }
                    let lengths = Set(h.headers.values("Content-Length"))
                    if let cl = lengths.first {
                        guard lengths.count == 1, !cl.isEmpty, cl.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }),
                              let n = Int(cl) else {
                            return respond(HTTPResponse(error: HTTPError(status: .badRequest, reason: "bad Content-Length", headers: [])))
                        }
                        guard n <= AdminConnection.maxBody else { return respond(HTTPResponse(error: HTTPError(status: .payloadTooLarge, reason: "body over 1 MiB", headers: []))) }
                        expectedBody = n
                    } else if h.headers["Transfer-Encoding"] != nil {
                        return respond(HTTPResponse(error: HTTPError(status: .badRequest, reason: "chunked bodies are not supported; send Content-Length", headers: [])))
                    }
                }
            } catch {
                return respond(HTTPResponse(error: error))
            }
        }
        body.append(contentsOf: rest.prefix(expectedBody - body.count))
        if body.count >= expectedBody, let h = head {
            route(h)
        }
    }

    func route(_ h: HTTPRequestHead) {
        let node = loop.node
        if h.path == "/console" || h.path.hasPrefix("/console/") { return routeConsole(h, body: body) }
        switch (h.method, h.path) {
        case ("GET", "/health"), ("HEAD", "/health"):
            let (ok, json) = node.healthReport()
            respond(.json(ok ? .ok : .serviceUnavailable, json))
        case ("GET", "/ready"), ("HEAD", "/ready"):
            let (ok, json) = node.readinessReport()
            respond(.json(ok ? .ok : .serviceUnavailable, json))
        case ("GET", "/metrics"):
            respond(HTTPResponse(status: .ok, headers: [HTTPHeader("Content-Type", "text/plain; version=0.0.4; charset=utf-8")],
                                 body: Array(node.metricsText().utf8)))
        case ("POST", "/api/publish"):
            publishAPI(h)
        case ("GET", "/api/analytics"):
            analyticsAPI(h)
        case (_, "/health"), (_, "/ready"), (_, "/metrics"), (_, "/api/publish"), (_, "/api/analytics"):
            respond(HTTPResponse(error: HTTPError(status: .methodNotAllowed, reason: "method not allowed", headers: [])))
        default:
            respond(HTTPResponse(error: HTTPError(status: .notFound, reason: "not found", headers: [])))
        }
    }

    /// `POST /api/publish` with `Authorization: Bearer <--api-key>` and `{"room": "...", "data": ...}`,
    /// optionally `Idempotency-Key: <1-200 bytes>`. Three outcomes (docs/protocol.md):
    /// - 202 `{"offset": "..."}`: stored and delivered (a retry with the same key within
    ///   `--idempotency-window` answers the first offset and stores nothing);
    /// - 503 `error unavailable` (`Retry-After: 1`): refused, nothing was or will be written (bus down);
    /// - 504 `error unknown`: handed to Redis, answer lost; it may have been stored. Retry with the same
    ///   `Idempotency-Key` to make sure it is stored exactly once.
    /// 401 without the right key; 400 with a reason for a malformed body or key.
    private func publishAPI(_ h: HTTPRequestHead) {
        let node = loop.node
        guard authorizeAPI(h) else { return }
        let request: ClientRequest
        do {
            request = try APIBody.decode(body)
        } catch {
            return respond(.json(.badRequest, Envelope.error(error.code, message: error.message)))
        }
        guard case .publish(let room, let data, _) = request else {
            return respond(.json(.badRequest, Envelope.error(.badRequest, message: "expected {\"room\": ..., \"data\": ...}")))
        }
        let key = h.headers["Idempotency-Key"]
        if let key, key.isEmpty || key.utf8.count > 200 {
            return respond(.json(.badRequest, Envelope.error(.badRequest, message: "Idempotency-Key must be 1-200 bytes")))
        }
        node.apiPublishes.add()
        let gl = loop
        // "api:" keeps HTTP keys apart from the WebSocket sessions' keys in the same room.
        node.rooms.publish(room: room, data: data, idempotencyKey: key.map { "api:" + $0 }) { result in
            gl.onLoop {
                switch result {
                case .success(let offset):
                    self.respond(.json(.accepted, Array("{\"offset\":\"\(offset.description)\"}".utf8)))
                case .failure(.unknown(let why)):
                    self.respond(.json(.gatewayTimeout, Envelope.error(.unknown, message: "outcome unknown: \(why); retry with the same Idempotency-Key")))
                case .failure(.invalid(let why)):
                    self.respond(.json(.badRequest, Envelope.error(.badRequest, message: why)))
                case .failure(.unavailable):
                    self.respond(.json(.serviceUnavailable, Envelope.error(.unavailable, message: "the bus is down"),
                                       headers: [HTTPHeader("Retry-After", "1")]))
                }
            }
        }
    }

    /// `GET /api/analytics?count=N` with the API key: the newest N (default 100, at most 10,000) analytics
    /// events, oldest first, as `{"events":[{"user","node","room","event","data","ts"}]}`. With Redis this
    /// reads the stream (`XREVRANGE`); backends should consume the stream itself (docs/redis.md).
    private func analyticsAPI(_ h: HTTPRequestHead) {
        guard authorizeAPI(h) else { return }
        let count = min(10_000, max(1, Int(h.queryParameter("count") ?? "") ?? 100))
        let gl = loop
        gl.node.analytics.recentAnalytics(count: count) { events in
            var json = "{\"events\":["
            for (i, e) in events.enumerated() {
                if i > 0 { json += "," }
                json += "{\"user\":\(gl.node.jsonString(e.user)),\"node\":\(gl.node.jsonString(e.node)),\"room\":\(e.room.map { gl.node.jsonString($0) } ?? "null"),"
                json += "\"event\":\(gl.node.jsonString(e.event)),\"data\":\(e.data.map { String(decoding: $0.bytes, as: UTF8.self) } ?? "null"),\"ts\":\(e.serverTimeMilliseconds)}"
            }
            json += "]}"
            let body = Array(json.utf8)
            gl.onLoop { self.respond(.json(.ok, body)) }
        }
    }

    /// Checks `Authorization: Bearer <--api-key>`; answers 404 (API off) or 401 itself and returns false.
    private func authorizeAPI(_ h: HTTPRequestHead) -> Bool {
        // JSON error bodies like the API's 400s, so a backend parses one shape whatever went wrong.
        guard let key = loop.node.config.apiKey else {
            respond(.json(.notFound, Envelope.error(.unavailable, message: "the API is off (set --api-key)")))
            return false
        }
        let auth = h.headers["Authorization"] ?? ""
        guard auth.hasPrefix("Bearer "), constantTimeEquals(String(auth.dropFirst(7)), key) else {
            respond(.json(.unauthorized, Envelope.error(.unauthorized, message: "missing or wrong API key"),
                          headers: [HTTPHeader("WWW-Authenticate", "Bearer")]))
            return false
        }
        return true
    }

    func respond(_ response: HTTPResponse) {
        guard !answered else { return }
        answered = true
        var r = response
        if head?.method == "HEAD" { r.body = [] }
        enqueueRaw(loop.node.httpAnswer(r, https: loop.adminTLS != nil))
        shutdownWriteAfterFlush()
    }

    override func didClose() { timerGeneration &+= 1 }
}

/// Decodes the publish API body by handing it to the client envelope decoder as a `publish` op, so the API
/// and the WebSocket `publish` share one set of validation rules and error messages.
enum APIBody {
    static func decode(_ body: [UInt8]) throws(EnvelopeError) -> ClientRequest {
        let trimmed = body.drop(while: { $0 == 0x20 || $0 == 0x0A || $0 == 0x0D || $0 == 0x09 })
        guard trimmed.first == UInt8(ascii: "{") else {
            throw EnvelopeError(code: .badRequest, message: "body must be a JSON object {\"room\": ..., \"data\": ...}", id: nil)
        }
        var wrapped: [UInt8] = Array("{\"op\":\"publish\",".utf8)
        wrapped.append(contentsOf: trimmed.dropFirst())
        // An empty object "{}" becomes {"op":"publish",} which is malformed; give it the proper message.
        if trimmed.dropFirst().drop(while: { $0 == 0x20 || $0 == 0x0A || $0 == 0x0D || $0 == 0x09 }).first == UInt8(ascii: "}") {
            throw EnvelopeError(code: .badRequest, message: "field 'room' is required", id: nil)
        }
        let result: Result<ClientRequest, EnvelopeError> = wrapped.withUnsafeBytes { p in
            do throws(EnvelopeError) { return .success(try Envelope.decode(p)) } catch { return .failure(error) }
        }
        return try result.get()
    }
}

/// Compares secrets in time independent of where they differ.
func constantTimeEquals(_ a: String, _ b: String) -> Bool {
    let x = Array(a.utf8), y = Array(b.utf8)
    var diff = UInt8(x.count == y.count ? 0 : 1)
    for i in 0..<max(x.count, y.count) {
        diff |= (i < x.count ? x[i] : 0) ^ (i < y.count ? y[i] : 0)
    }
    return diff == 0
}
