import COpenSSL
import ClusterBus
import Foundation
import Glibc
import Protocol
import Runtime

/// One HTTP/1.1 request on the admin port (`/health`, `/ready`, `/metrics`, the server API `POST /api/<method>`), answered
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
                            let n = Int(cl)
                        else {
                            return respond(HTTPResponse(error: HTTPError(status: .badRequest, reason: "bad Content-Length", headers: [])))
                        }
                        guard n <= AdminConnection.maxBody else {
                            return respond(HTTPResponse(error: HTTPError(status: .payloadTooLarge, reason: "body over 1 MiB", headers: [])))
                        }
                        expectedBody = n
                    } else if h.headers["Transfer-Encoding"] != nil {
                        return respond(
                            HTTPResponse(error: HTTPError(status: .badRequest, reason: "chunked bodies are not supported; send Content-Length", headers: [])))
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
            respond(
                HTTPResponse(
                    status: .ok, headers: [HTTPHeader("Content-Type", "text/plain; version=0.0.4; charset=utf-8")],
                    body: Array(node.metricsText().utf8)))
        case ("GET", "/api/analytics"):
            analyticsAPI(h)
        case ("POST", _) where h.path.hasPrefix("/api/"):
            serverAPI(h, method: String(h.path.dropFirst(5)))
        case (_, "/health"), (_, "/ready"), (_, "/metrics"), (_, "/api/analytics"):
            respond(HTTPResponse(error: HTTPError(status: .methodNotAllowed, reason: "method not allowed", headers: [])))
        case (_, _) where h.path.hasPrefix("/api/") && ServerAPI.methods.contains(String(h.path.dropFirst(5))):
            respond(HTTPResponse(error: HTTPError(status: .methodNotAllowed, reason: "the server API takes POST", headers: [])))
        default:
            respond(HTTPResponse(error: HTTPError(status: .notFound, reason: "not found", headers: [])))
        }
    }

    /// `POST /api/<method>` (API/ServerAPI.swift, docs/api.md): authorized, then answered on this loop
    /// with `X-Request-ID` (the caller's when valid, else a new one) in the header and the body.
    private func serverAPI(_ h: HTTPRequestHead, method: String) {
        let requestID = RequestID.from(h.headers["X-Request-ID"]) ?? RequestID.generate()
        guard authorizeAPI(h, requestID: requestID) else { return }
        let gl = loop
        let call = ServerAPI.Call(node: gl.node, requestID: requestID) { status, json in
            let body = Array(json.utf8)
            // 503 means nothing was done (the bus is down): say when to come back, as before the API grew.
            let retry = status == .serviceUnavailable ? [HTTPHeader("Retry-After", "1")] : []
            gl.onLoop { self.respond(.json(status, body, headers: [HTTPHeader("X-Request-ID", requestID)] + retry)) }
        }
        ServerAPI.handle(method: method, body: body, header: { h.headers[$0] }, call: call)
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
                json +=
                    "{\"user\":\(gl.node.jsonString(e.user)),\"node\":\(gl.node.jsonString(e.node)),\"room\":\(e.room.map { gl.node.jsonString($0) } ?? "null"),"
                json +=
                    "\"event\":\(gl.node.jsonString(e.event)),\"data\":\(e.data.map { String(decoding: $0.bytes, as: UTF8.self) } ?? "null"),\"ts\":\(e.serverTimeMilliseconds)}"
            }
            json += "]}"
            let body = Array(json.utf8)
            gl.onLoop { self.respond(.json(.ok, body)) }
        }
    }

    /// Checks `Authorization: Bearer <key>` against every `--api-key` (each compared in constant time, all
    /// of them always, so the time says nothing about which key or byte differed); answers 404 (API off)
    /// or 401 itself and returns false.
    private func authorizeAPI(_ h: HTTPRequestHead, requestID: String = RequestID.generate()) -> Bool {
        // JSON error bodies like the API's 400s, so a backend parses one shape whatever went wrong.
        let keys = loop.node.config.api.keys
        let idHeader = HTTPHeader("X-Request-ID", requestID)
        guard !keys.isEmpty else {
            respond(.json(.notFound, APIBody.error(.unavailable, "the API is off (set --api-key)", requestID: requestID), headers: [idHeader]))
            return false
        }
        let auth = h.headers["Authorization"] ?? ""
        let given = auth.hasPrefix("Bearer ") ? String(auth.dropFirst(7)) : ""
        var match = false
        for key in keys { match = constantTimeEquals(given, key) || match }
        guard !given.isEmpty, match else {
            respond(
                .json(
                    .unauthorized, APIBody.error(.unauthorized, "missing or wrong API key", requestID: requestID),
                    headers: [HTTPHeader("WWW-Authenticate", "Bearer"), idHeader]))
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
    /// `{"op":"error","code":…,"message":…,"request_id":…}`: the server API's error shape.
    static func error(_ code: ErrorCode, _ message: String, requestID: String) -> [UInt8] {
        var e = Envelope.error(code, message: message)
        e.removeLast()
        return e + Array(",\"request_id\":\(js(requestID))}".utf8)
    }

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

/// Compares secrets in time independent of where they differ: both are hashed with SHA-256 (OpenSSL's
/// EVP) and the digests compared with OpenSSL's `CRYPTO_memcmp`, so neither the position of the first
/// difference nor the lengths show in the time taken.
func constantTimeEquals(_ a: String, _ b: String) -> Bool {
    let x = sha256(Array(a.utf8))
    let y = sha256(Array(b.utf8))
    guard x.count == 32, y.count == 32 else { return false }
    return x.withUnsafeBytes { p in y.withUnsafeBytes { q in CRYPTO_memcmp(p.baseAddress, q.baseAddress, 32) == 0 } }
}

/// SHA-256 of `bytes` (OpenSSL `EVP_Digest`); empty on failure.
private func sha256(_ bytes: [UInt8]) -> [UInt8] {
    var out = [UInt8](repeating: 0, count: 32)
    var length: UInt32 = 0
    let ok = bytes.withUnsafeBytes { input in
        out.withUnsafeMutableBytes { EVP_Digest(input.baseAddress, input.count, $0.baseAddress, &length, EVP_sha256(), nil) }
    }
    return ok == 1 && length == 32 ? out : []
}
