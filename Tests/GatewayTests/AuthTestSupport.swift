import COpenSSL
import Foundation
import Glibc
import Protocol
import Runtime

@testable import Gateway

/// Test keys made once per test process with the `openssl` CLI (RSA 2048, RSA 1024, P-256, P-384, secp256k1),
/// and JWT signing with OpenSSL's EVP API, so every token in the auth tests carries a real signature.
final class TestKeys: @unchecked Sendable {
    static let shared = TestKeys()

    let dir: URL
    /// 32+ bytes, for HS*.
    let secret = "test-secret-0123456789-abcdefghijklmnop"
    let rsaPrivate: String, rsaPublic: String
    let rsa2Private: String, rsa2Public: String
    let rsaSmallPublic: String
    let ecPrivate: String, ecPublic: String
    let ec384Private: String, ec384Public: String
    let k1Public: String

    /// This process's key directory: made on first use, removed when the test process exits (the keys are
    /// shared by every auth test, so no single test may delete them).
    static func directory() -> URL {
        FileManager.default.temporaryDirectory.appendingPathComponent("switchboard-auth-keys-\(getpid())")
    }

    private init() {
        let dir = TestKeys.directory()
        self.dir = dir
        try? FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        atexit { try? FileManager.default.removeItem(at: TestKeys.directory()) }
        func gen(_ name: String, _ args: [String]) -> (String, String) {
            let priv = dir.appendingPathComponent("\(name).pem").path
            let pub = dir.appendingPathComponent("\(name).pub.pem").path
            if !FileManager.default.fileExists(atPath: pub) {
                TestKeys.run(["genpkey"] + args + ["-out", priv])
                TestKeys.run(["pkey", "-in", priv, "-pubout", "-out", pub])
            }
            return (priv, pub)
        }
        (rsaPrivate, rsaPublic) = gen("rsa", ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"])
        (rsa2Private, rsa2Public) = gen("rsa2", ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"])
        (_, rsaSmallPublic) = gen("rsa1024", ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:1024"])
        (ecPrivate, ecPublic) = gen("ec", ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"])
        (ec384Private, ec384Public) = gen("ec384", ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384"])
        (_, k1Public) = gen("k1", ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:secp256k1"])
    }

    static func run(_ args: [String]) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
        p.arguments = args
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try? p.run()
        p.waitUntilExit()
    }
}

/// Builds and signs compact JWS tokens (RFC 7515 §7.1) for tests.
enum TokenFactory {
    static var now: Int { Int(Date().timeIntervalSince1970) }

    /// A claims object: sub, exp (now + 1 h), iat, rooms, publish, plus `extra` (nil values remove a claim).
    static func claims(
        sub: String = "alice", rooms: [String] = ["lobby", "user:{sub}", "stream:*"], publish: [String] = ["lobby"],
        exp: Int? = TokenFactory.now + 3600, extra: [String: Any?] = [:]
    ) -> [String: Any] {
        var c: [String: Any] = ["sub": sub, "rooms": rooms, "publish": publish, "iat": now]
        if let exp { c["exp"] = exp }
        for (k, v) in extra { c[k] = v }
        return c
    }

    static func b64(_ bytes: [UInt8]) -> String { Base64URL.encode(bytes) }

    static func json(_ object: [String: Any]) -> String {
        b64([UInt8](try! JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])))
    }

    /// A token signed with `alg` ("HS256", "RS256", "ES256", ...) using the test keys (`key` overrides the
    /// private key file or the HMAC secret), header extras merged in.
    static func make(
        alg: String = "HS256", claims: [String: Any] = TokenFactory.claims(), kid: String? = nil,
        header: [String: Any] = [:], key: String? = nil
    ) -> String {
        var h: [String: Any] = ["alg": alg, "typ": "JWT"]
        if let kid { h["kid"] = kid }
        for (k, v) in header { h[k] = v }
        let input = json(h) + "." + json(claims)
        let keys = TestKeys.shared
        let sig: [UInt8]
        switch alg.prefix(2) {
        case "HS": sig = hmac(alg, key ?? keys.secret, input)
        case "RS": sig = sign(alg, key ?? keys.rsaPrivate, input, ecLength: nil)
        case "ES": sig = sign(alg, key ?? (alg == "ES384" ? keys.ec384Private : keys.ecPrivate), input, ecLength: alg == "ES384" ? 48 : 32)
        default: sig = []
        }
        return input + "." + b64(sig)
    }

    static func digest(_ alg: String) -> OpaquePointer? {
        switch alg.suffix(3) {
        case "384": EVP_sha384()
        case "512": EVP_sha512()
        default: EVP_sha256()
        }
    }

    static func hmac(_ alg: String, _ secret: String, _ input: String) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: 64)
        var len: UInt32 = 0
        let key = Array(secret.utf8)
        let data = Array(input.utf8)
        _ = HMAC(digest(alg), key, Int32(key.count), data, data.count, &out, &len)
        return Array(out.prefix(Int(len)))
    }

    /// EVP_DigestSign with a PEM private key; ECDSA DER signatures converted to JWS R||S.
    static func sign(_ alg: String, _ keyPath: String, _ input: String, ecLength: Int?) -> [UInt8] {
        let pem = [UInt8](FileManager.default.contents(atPath: keyPath)!)
        let bio = pem.withUnsafeBytes { BIO_new_mem_buf($0.baseAddress, Int32($0.count)) }
        defer { BIO_free(bio) }
        let pkey = PEM_read_bio_PrivateKey(bio, nil, nil, nil)!
        defer { EVP_PKEY_free(pkey) }
        let ctx = EVP_MD_CTX_new()!
        defer { EVP_MD_CTX_free(ctx) }
        precondition(EVP_DigestSignInit(ctx, nil, digest(alg), nil, pkey) == 1)
        let data = Array(input.utf8)
        var len = 0
        _ = EVP_DigestSign(ctx, nil, &len, data, data.count)
        var sig = [UInt8](repeating: 0, count: len)
        precondition(EVP_DigestSign(ctx, &sig, &len, data, data.count) == 1)
        sig = Array(sig.prefix(len))
        guard let n = ecLength else { return sig }
        return sig.withUnsafeBufferPointer { buf -> [UInt8] in
            var p: UnsafePointer<UInt8>? = buf.baseAddress
            let esig = d2i_ECDSA_SIG(nil, &p, buf.count)!
            defer { ECDSA_SIG_free(esig) }
            var r: OpaquePointer? = nil
            var s: OpaquePointer? = nil
            ECDSA_SIG_get0(esig, &r, &s)
            var out = [UInt8](repeating: 0, count: 2 * n)
            out.withUnsafeMutableBufferPointer { o in
                BN_bn2binpad(r, o.baseAddress, Int32(n))
                BN_bn2binpad(s, o.baseAddress! + n, Int32(n))
            }
            return out
        }
    }

    /// `token` with one character of its signature changed.
    static func tamperSignature(_ token: String) -> String {
        var chars = Array(token)
        let i = chars.count - 3
        chars[i] = chars[i] == "A" ? "B" : "A"
        return String(chars)
    }
}

/// A scripted auth backend: a real HTTP/1.1 listener on 127.0.0.1 that logs each request (arrival time,
/// body) and answers as `behavior` says. `stop()` closes the listener (connections are then refused) and
/// `start()` reopens it on the same port.
final class FakeAuthBackend: @unchecked Sendable {
    enum Behavior: Sendable {
        /// Answer with this status and JSON body.
        case respond(Int, String)
        /// Read the request, never answer (close after `seconds`).
        case hang(Double)
        /// Close without answering.
        case close
    }

    let port: Int
    private let state = Lock<(fd: CInt, generation: Int)>((-1, 0))
    private let log = Lock<[(at: Date, body: String)]>([])
    private let script: Lock<@Sendable (Int, String) -> Behavior>

    /// A backend on a fresh port answering 200 for user `alice` unless told otherwise.
    init(port: Int? = nil, behavior: @escaping @Sendable (Int, String) -> Behavior = { _, _ in .respond(200, FakeAuthBackend.okBody()) }) throws {
        self.port = try port ?? freePort()
        script = Lock(behavior)
        try start()
    }

    static func okBody(user: String = "alice", rooms: [String] = ["lobby", "user:{sub}"], publish: [String] = ["lobby"], expiresAt: Int? = nil) -> String {
        var o: [String: Any] = ["user": user, "rooms": rooms, "publish": publish]
        if let e = expiresAt { o["expires_at"] = e }
        return String(decoding: try! JSONSerialization.data(withJSONObject: o), as: UTF8.self)
    }

    var url: String { "http://127.0.0.1:\(port)/auth" }

    func setBehavior(_ b: @escaping @Sendable (Int, String) -> Behavior) { script.withLock { $0 = b } }

    /// Requests received so far (arrival time, body).
    var requests: [(at: Date, body: String)] { log.withLock { $0 } }

    func start() throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        var one: CInt = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<CInt>.size))
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = in_port_t(UInt16(port)).bigEndian
        let r = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard r == 0, listen(fd, 1024) == 0 else {
            close(fd)
            throw TestFailure("fake backend bind \(port): errno \(errno)")
        }
        let gen = state.withLock { s -> Int in
            s = (fd, s.generation + 1)
            return s.generation
        }
        let t = Thread { [self] in acceptLoop(fd: fd, generation: gen) }
        t.start()
    }

    func stop() {
        let fd = state.withLock { s -> CInt in
            let f = s.fd
            s = (-1, s.generation + 1)
            return f
        }
        if fd >= 0 {
            shutdown(fd, CInt(SHUT_RDWR))
            close(fd)
        }
    }

    deinit { stop() }

    private func acceptLoop(fd: CInt, generation: Int) {
        while state.withLock({ $0.generation }) == generation {
            var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            if poll(&p, 1, 100) <= 0 { continue }
            let c = accept(fd, nil, nil)
            if c < 0 { continue }
            let t = Thread { [self] in serve(c) }
            t.start()
        }
    }

    private func serve(_ c: CInt) {
        defer { close(c) }
        var buf: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 16384)
        var body = ""
        while true {
            var p = pollfd(fd: c, events: Int16(POLLIN), revents: 0)
            guard poll(&p, 1, 5000) > 0 else { return }
            let n = chunk.withUnsafeMutableBytes { read(c, $0.baseAddress, $0.count) }
            if n <= 0 { return }
            buf.append(contentsOf: chunk[0..<n])
            let text = String(decoding: buf, as: UTF8.self)
            if let end = text.range(of: "\r\n\r\n") {
                let head = text[..<end.lowerBound].lowercased()
                var length = 0
                if let cl = head.range(of: "content-length: ") {
                    length = Int(head[cl.upperBound...].prefix { $0.isNumber }) ?? 0
                }
                let have = text[end.upperBound...].utf8.count
                if have >= length {
                    body = String(text[end.upperBound...])
                    break
                }
            }
        }
        let index = log.withLock { l -> Int in
            l.append((Date(), body))
            return l.count
        }
        let behavior = script.withLock { $0 }(index, body)
        switch behavior {
        case .respond(let status, let json):
            let reason = status == 200 ? "OK" : "Status"
            let resp =
                "HTTP/1.1 \(status) \(reason)\r\nContent-Type: application/json\r\nContent-Length: \(json.utf8.count)\r\nConnection: close\r\n\r\n\(json)"
            _ = Array(resp.utf8).withUnsafeBytes { send(c, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        case .hang(let seconds):
            usleep(UInt32(seconds * 1_000_000))
        case .close:
            return
        }
    }
}

/// One raw upgrade request; returns the status line's code and the whole response text (head and body).
func upgradeAnswer(port: Int, target: String = "/ws", headers: [HTTPHeader] = [], timeout: TimeInterval = 8) throws -> (status: Int, text: String) {
    let s = try RawSocket(port: port)
    let (req, _) = WebSocketHandshake.clientRequest(host: "127.0.0.1:\(port)", path: target, headers: headers)
    try s.send(req)
    let deadline = Date().addingTimeInterval(timeout)
    while Date() < deadline {
        let text = String(decoding: s.buffer, as: UTF8.self)
        if let end = text.range(of: "\r\n\r\n") {
            let status = Int(text.dropFirst(9).prefix(3)) ?? 0
            if status == 101 { return (101, text) }
            // Error answers carry a Content-Length body and then the server closes.
            if let cl = text.lowercased().range(of: "content-length: "),
                let n = Int(text.lowercased()[cl.upperBound...].prefix { $0.isNumber }), text[end.upperBound...].utf8.count >= n
            {
                return (status, text)
            }
        }
        do {
            if try !s.fill(timeout: max(0.01, deadline.timeIntervalSinceNow)) { break }
        } catch {
            break
        }
    }
    let text = String(decoding: s.buffer, as: UTF8.self)
    return (Int(text.dropFirst(9).prefix(3)) ?? 0, text)
}

/// The value of a header in a raw response text, matched case-insensitively.
func headerValue(_ text: String, _ name: String) -> String? {
    for line in text.components(separatedBy: "\r\n") {
        guard let colon = line.firstIndex(of: ":") else { continue }
        if line[..<colon].lowercased() == name.lowercased() { return line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces) }
    }
    return nil
}

/// Sum of `switchboard_auth_attempts_total{result=…}` and similar labelled samples.
func metricOrZero(_ gw: GatewayProcess, _ name: String) -> Double { ((try? gw.metric(name)) ?? nil) ?? 0 }
