import Foundation
import Runtime
import Testing

@testable import Gateway

/// The auth building blocks driven with no sockets and a fake clock: circuit breaker, backoff, cache,
/// Origin policy, per-IP admission, client address, chunked bodies, flags.
@Suite struct AuthPolicyTests {
    // MARK: - Circuit breaker

    @Test func breakerOpensAfterKConsecutiveFailuresFailsFastThenProbes() {
        var b = CircuitBreaker(threshold: 3, cooldownMs: 1000)
        var now: UInt64 = 10_000
        #expect(b.acquire(now: now) == .allowed)
        b.recordFailure(now: now)
        b.recordFailure(now: now)
        b.recordSuccess(now: now)  // a success resets the count
        b.recordFailure(now: now)
        b.recordFailure(now: now)
        #expect(b.state == .closed)
        b.recordFailure(now: now)  // third consecutive
        #expect(b.state == .open && b.opens == 1)
        now += 400
        #expect(b.acquire(now: now) == .rejected(retryAfterMs: 600))
        #expect(b.rejection(now: now) == 600)
        now += 600
        #expect(b.rejection(now: now) == nil)
        #expect(b.acquire(now: now) == .probe)
        #expect(b.state == .halfOpen)
        #expect(b.acquire(now: now + 1) == .rejected(retryAfterMs: 999), "one probe at a time")
        b.recordFailure(now: now + 5)  // probe failed: open again for a full cooldown
        #expect(b.state == .open && b.opens == 2)
        #expect(b.acquire(now: now + 500) == .rejected(retryAfterMs: 505))
        #expect(b.acquire(now: now + 1005) == .probe)
        b.recordSuccess(now: now + 1010)  // probe succeeded
        #expect(b.state == .closed && b.consecutiveFailures == 0)
        #expect(b.acquire(now: now + 1011) == .allowed)
    }

    @Test func breakerLostProbeIsReplacedAfterACooldownAndLateFailuresDoNotExtend() {
        var b = CircuitBreaker(threshold: 1, cooldownMs: 100)
        b.recordFailure(now: 0)
        b.recordFailure(now: 50)  // late failure while open: no new cooldown
        #expect(b.acquire(now: 100) == .probe)
        #expect(b.acquire(now: 150) == .rejected(retryAfterMs: 50))
        #expect(b.acquire(now: 200) == .probe, "the first probe never reported")
        #expect(b.opens == 1)
    }

    // MARK: - Backoff

    /// A deterministic generator (SplitMix64) so jitter is reproducible.
    struct SeededRNG: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    @Test func backoffIsExponentialWithFullJitterAndCapped() {
        let p = RetryPolicy(retries: 6, baseMs: 100, capMs: 1000, tryTimeoutMs: 1000, deadlineMs: 60_000)
        #expect((1...6).map(p.ceilingMs(beforeRetry:)) == [100, 200, 400, 800, 1000, 1000])
        var rng = SeededRNG(state: 42)
        for n in 1...6 {
            var seen = Set<Int>()
            for _ in 0..<500 {
                let d = p.backoffMs(beforeRetry: n, using: &rng)
                #expect(d >= 0 && d <= p.ceilingMs(beforeRetry: n))
                seen.insert(d)
            }
            #expect(seen.count > 50, "jitter spreads the waits")
        }
        // Mean grows with the retry number (full jitter: ceiling / 2).
        var means: [Double] = []
        for n in 1...4 {
            var sum = 0
            for _ in 0..<2000 { sum += p.backoffMs(beforeRetry: n, using: &rng) }
            means.append(Double(sum) / 2000)
        }
        #expect(means[0] < means[1] && means[1] < means[2] && means[2] < means[3])
        #expect(RetryPolicy(retries: 1, baseMs: Int.max / 2, capMs: 5000, tryTimeoutMs: 1, deadlineMs: 1).ceilingMs(beforeRetry: 40) == 5000)
    }

    @Test func retryPlanRespectsAttemptsAndTheDeadlineWithAFakeClock() {
        let p = RetryPolicy(retries: 2, baseMs: 100, capMs: 2000, tryTimeoutMs: 1000, deadlineMs: 2500)
        var rng = SeededRNG(state: 7)
        var now: UInt64 = 1_000_000
        let start = now
        var attempts = 1
        var timeouts = [p.firstTimeoutMs]
        // Every attempt times out: the plan must stop at 3 attempts and within the deadline.
        while true {
            now += UInt64(timeouts.last!)
            guard case .retry(let wait, let timeout) = p.afterFailure(attempt: attempts, startedAt: start, now: now, using: &rng) else { break }
            #expect(wait <= p.ceilingMs(beforeRetry: attempts))
            now += UInt64(wait)
            attempts += 1
            timeouts.append(timeout)
        }
        #expect(attempts == 3)
        #expect(now - start <= 2500 + 1000)
        #expect(timeouts.allSatisfy { $0 <= 1000 })
        // The last retry's timeout is cut to what the deadline leaves.
        #expect(p.afterFailure(attempt: 1, startedAt: start, now: start + 2480, using: &rng) == .giveUp)
        #expect(p.afterFailure(attempt: 3, startedAt: start, now: start, using: &rng) == .giveUp)
        if case .retry(_, let t) = RetryPolicy(retries: 1, baseMs: 0, capMs: 0, tryTimeoutMs: 1000, deadlineMs: 1500)
            .afterFailure(attempt: 1, startedAt: start, now: start + 1000, using: &rng)
        {
            #expect(t == 500)
        } else {
            Issue.record("expected a retry")
        }
    }

    // MARK: - Cache

    @Test func cacheHonoursTtlIdentityExpiryAndCapacity() {
        var c = AuthCache(ttlMs: 1000, capacity: 3)
        let id = AuthIdentity(user: "u", rooms: ["a"], publish: [], expiresAt: nil)
        let k1 = AuthCacheKey(token: "t1")
        #expect(k1 == AuthCacheKey(token: "t1") && k1 != AuthCacheKey(token: "t2"))
        c.put(k1, id, now: 0, wallNowMs: 0)
        #expect(c.get(k1, now: 999) === id)
        #expect(c.get(k1, now: 1000) == nil)
        // The identity's own expiry shortens the TTL; an already expired one is not cached.
        let wall: UInt64 = 1_700_000_000_000
        let soon = AuthIdentity(user: "u", rooms: [], publish: [], expiresAt: Double(wall) / 1000 + 0.2)
        c.put(k1, soon, now: 0, wallNowMs: wall)
        #expect(c.get(k1, now: 199) != nil && c.get(k1, now: 200) == nil)
        let past = AuthIdentity(user: "u", rooms: [], publish: [], expiresAt: Double(wall) / 1000 - 1)
        c.put(k1, past, now: 0, wallNowMs: wall)
        #expect(c.get(k1, now: 0) == nil)
        // Bounded: the oldest insertion goes first; re-insertions never grow the bookkeeping without bound.
        for i in 0..<10_000 { c.put(AuthCacheKey(token: "k\(i % 5)"), id, now: 10, wallNowMs: 0) }
        #expect(c.count <= 3)
        #expect(c.get(AuthCacheKey(token: "k4"), now: 11) != nil)
        #expect(AuthCache(ttlMs: 0, capacity: 10).count == 0)
        var off = AuthCache(ttlMs: 0, capacity: 10)
        off.put(k1, id, now: 0, wallNowMs: 0)
        #expect(off.get(k1, now: 0) == nil)
    }

    // MARK: - Origin (RFC 6455 §10.2)

    @Test func originPolicyExactWildcardNullAndMissing() throws {
        let p = try OriginPolicy(allowed: ["https://app.example.com", "http://localhost:3000", "https://*.example.org", "*.example.net"], allowMissing: false)
        #expect(p.allows("https://app.example.com"))
        #expect(p.allows("HTTPS://APP.EXAMPLE.COM"))
        #expect(p.allows("https://app.example.com:443"))
        #expect(!p.allows("http://app.example.com"))
        #expect(!p.allows("https://app.example.com:8443"))
        #expect(!p.allows("https://evil.com"))
        #expect(!p.allows("https://app.example.com.evil.com"))
        #expect(!p.allows("https://evilapp.example.com"))
        #expect(p.allows("http://localhost:3000") && !p.allows("http://localhost:3001") && !p.allows("http://localhost"))
        #expect(p.allows("https://a.example.org") && p.allows("https://a.b.example.org"))
        #expect(!p.allows("https://example.org") && !p.allows("http://a.example.org") && !p.allows("https://a.example.org:8443"))
        #expect(!p.allows("https://aexample.org"))
        #expect(p.allows("http://x.example.net") && p.allows("https://x.example.net"))
        #expect(!p.allows("null") && !p.allows(nil) && !p.allows("") && !p.allows("garbage") && !p.allows("https://app.example.com/path"))
        #expect(!p.allows("https://user@app.example.com"))
        #expect(try OriginPolicy(allowed: ["null"], allowMissing: true).allows("null"))
        #expect(try OriginPolicy(allowed: [], allowMissing: true).allows("https://anything"))
        #expect(try OriginPolicy(allowed: ["*"], allowMissing: false).allows("https://anything"))
        #expect(try !OriginPolicy(allowed: [], allowMissing: false).allows(nil))
        #expect(throws: OriginPolicy.Invalid.self) { try OriginPolicy(allowed: ["ftp://x.com"], allowMissing: true) }
        #expect(throws: OriginPolicy.Invalid.self) { try OriginPolicy(allowed: ["https://a.*.com"], allowMissing: true) }
        #expect(throws: OriginPolicy.Invalid.self) { try OriginPolicy(allowed: ["https://x.com/path"], allowMissing: true) }
    }

    // MARK: - Admission

    @Test func admissionLimitsConcurrentConnectionsPerIP() {
        var t = AdmissionTable(maxConnectionsPerIP: 2, handshakesPerSecond: 0)
        #expect(t.admit("1.1.1.1", now: 0) == .admitted)
        #expect(t.admit("1.1.1.1", now: 0) == .admitted)
        #expect(t.admit("1.1.1.1", now: 0) == .tooManyConnections(retryAfterSeconds: 1))
        #expect(t.admit("2.2.2.2", now: 0) == .admitted)
        t.release("1.1.1.1", now: 1)
        #expect(t.admit("1.1.1.1", now: 1) == .admitted)
        t.release("2.2.2.2", now: 1)
        #expect(t.trackedIPs == 1, "an IP with no connection and no rate state is forgotten")
    }

    @Test func admissionRateIsATokenBucketPerIP() {
        var t = AdmissionTable(maxConnectionsPerIP: 0, handshakesPerSecond: 5)
        for _ in 0..<5 { #expect(t.admit("9.9.9.9", now: 1000) == .admitted) }
        #expect(t.admit("9.9.9.9", now: 1000) == .tooManyHandshakes(retryAfterSeconds: 1))
        #expect(t.admit("8.8.8.8", now: 1000) == .admitted)
        #expect(t.admit("9.9.9.9", now: 1199) == .tooManyHandshakes(retryAfterSeconds: 1))
        #expect(t.admit("9.9.9.9", now: 1200) == .admitted, "one token per 200 ms at 5/s")
        var slow = AdmissionTable(maxConnectionsPerIP: 0, handshakesPerSecond: 1)
        #expect(slow.admit("a", now: 0) == .admitted)
        #expect(slow.admit("a", now: 0) == .tooManyHandshakes(retryAfterSeconds: 1))
    }

    @Test func admissionTableIsBoundedAndSweepsIdleEntries() {
        var t = AdmissionTable(maxConnectionsPerIP: 10, handshakesPerSecond: 100, maxTrackedIPs: 3)
        for ip in ["a", "b", "c"] { #expect(t.admit(ip, now: 1000) == .admitted) }
        #expect(t.admit("d", now: 1000) == .overCapacity(retryAfterSeconds: 1))
        for ip in ["a", "b", "c"] { t.release(ip, now: 1001) }
        #expect(t.admit("d", now: 3000) == .admitted, "idle, refilled entries were swept")
        #expect(t.trackedIPs <= 3)
    }

    @Test func clientAddressBelievesXForwardedForOnlyFromTrustedProxies() {
        let trusted = TrustedProxies("10.0.0.0/8,127.0.0.1")!
        #expect(clientAddress(peer: "203.0.113.9", forwardedFor: ["1.2.3.4"], trusted: trusted) == "203.0.113.9")
        #expect(clientAddress(peer: "10.1.1.1", forwardedFor: ["1.2.3.4"], trusted: trusted) == "1.2.3.4")
        #expect(
            clientAddress(peer: "10.1.1.1", forwardedFor: ["6.6.6.6, 1.2.3.4, 10.2.2.2"], trusted: trusted) == "1.2.3.4",
            "the right-most untrusted hop; the client's own forged entries on the left are ignored")
        #expect(clientAddress(peer: "10.1.1.1", forwardedFor: ["6.6.6.6", "1.2.3.4"], trusted: trusted) == "1.2.3.4")
        #expect(clientAddress(peer: "10.1.1.1", forwardedFor: ["10.3.3.3, 10.2.2.2"], trusted: trusted) == "10.3.3.3")
        #expect(clientAddress(peer: "10.1.1.1", forwardedFor: ["garbage"], trusted: trusted) == "10.1.1.1")
        #expect(clientAddress(peer: "10.1.1.1", forwardedFor: ["2001:db8::1"], trusted: trusted) == "2001:db8::1")
        #expect(clientAddress(peer: "10.1.1.1", forwardedFor: [], trusted: trusted) == "10.1.1.1")
        #expect(clientAddress(peer: "10.1.1.1", forwardedFor: ["1.2.3.4"], trusted: TrustedProxies("")!) == "10.1.1.1")
    }

    // MARK: - HTTP client pieces

    @Test func chunkedBodiesDecodeInAnySplit() {
        let body = Array("4\r\nWiki\r\n5;ext=1\r\npedia\r\n0\r\nTrailer: x\r\n\r\n".utf8)
        #expect(HTTPExchange.decodeChunked(body[...], limit: 100) == .complete(Array("Wikipedia".utf8)))
        for cut in 0..<body.count { #expect(HTTPExchange.decodeChunked(body[..<cut], limit: 100) == .needMore) }
        #expect(HTTPExchange.decodeChunked(Array("zz\r\n".utf8)[...], limit: 100) == .invalid("bad chunk size"))
        #expect(HTTPExchange.decodeChunked(Array("ffffffffff\r\n".utf8)[...], limit: 100) == .invalid("too large"))
        #expect(HTTPExchange.decodeChunked(Array("5\r\nhello\r\n".utf8)[...], limit: 3) == .invalid("too large"))
        #expect(HTTPExchange.decodeChunked(Array("2\r\nabXY".utf8)[...], limit: 10) == .invalid("chunk not followed by CRLF"))
    }

    @Test func backendAnswerParsing() {
        let ok = AuthBackend.parseIdentity(Array(#"{"user":"u1","rooms":["a:*"],"publish":"a:1","expires_at":1767225600}"#.utf8))
        #expect(ok?.user == "u1" && ok?.mayJoin("a:x") == true && ok?.mayPublish("a:1") == true && ok?.expiresAt == 1_767_225_600)
        #expect(AuthBackend.parseIdentity(Array(#"{"user":"u1"}"#.utf8))?.mayJoin("a") == false)
        #expect(AuthBackend.parseIdentity(Array(#"{"rooms":[]}"#.utf8)) == nil)
        #expect(AuthBackend.parseIdentity(Array(#"{"user":""}"#.utf8)) == nil)
        #expect(AuthBackend.parseIdentity(Array(#"{"user":"u","rooms":[1]}"#.utf8)) == nil)
        #expect(AuthBackend.parseIdentity(Array(#"{"user":"u","expires_at":"soon"}"#.utf8)) == nil)
        #expect(AuthBackend.parseIdentity(Array("not json".utf8)) == nil)
        #expect(AuthBackend.parseIdentity(Array(#"["user"]"#.utf8)) == nil)
    }

    // MARK: - Flags

    @Test func authFlagsParseRepeatMaskAndValidate() throws {
        let keys = TestKeys.shared
        let c = try Config.parse(
            arguments: [
                "--jwt-secret", keys.secret, "--jwt-public-key", "a=\(keys.rsaPublic)",
                "--jwt-public-key", keys.ecPublic, "--allowed-origins", "https://a.com, https://*.b.com",
                "--allow-no-origin", "no", "--auth-retries", "3", "--jwt-leeway", "5s"
            ],
            environment: ["SWITCHBOARD_JWT_PUBLIC_KEY": "ignored=/nonexistent"])
        #expect(c.auth.jwtPublicKeys == ["a=\(keys.rsaPublic)", keys.ecPublic], "flags replace the environment's list")
        #expect(c.auth.keys?.publicKeys.map(\.kid) == ["a", nil])
        #expect(c.auth.keys?.allowedAlgorithms.contains(.es256) == true && c.auth.keys?.allowedAlgorithms.contains(.es384) == false)
        #expect(c.auth.allowedOrigins == ["https://a.com", "https://*.b.com"] && !c.auth.allowNoOrigin)
        #expect(c.auth.authRetries == 3 && c.auth.jwtLeewayMs == 5000)
        let logged = Dictionary(uniqueKeysWithValues: c.loggable)
        #expect(logged["jwt-secret"] == "***", "secrets are masked in the startup log")
        let env = try Config.parse(arguments: [], environment: ["SWITCHBOARD_JWT_PUBLIC_KEY": "k1=\(keys.rsaPublic),k2=\(keys.ecPublic)"])
        #expect(env.auth.keys?.publicKeys.count == 2)
        for bad in [
            ["--jwt-secret", "short"], ["--jwt-public-key", "/nonexistent.pem"], ["--jwt-public-key", keys.rsaSmallPublic],
            ["--allowed-origins", "ftp://x"], ["--auth-url", "https://x"], ["--auth-url", "http://x:99999/"],
            ["--allow-no-origin", "maybe"], ["--auth-retries", "-1"], ["--token-cookie", "a;b"],
            ["--auth-backoff-base", "2s", "--auth-backoff-cap", "1s"]
        ] {
            #expect(throws: Config.Invalid.self, "\(bad)") { try Config.parse(arguments: bad, environment: [:]) }
        }
        #expect(Config.helpText.contains("--auth-breaker-threshold "), "long flag names are not cut in --help")
    }

    @Test func authEndpointParsing() throws {
        let e = try AuthEndpoint(url: "http://127.0.0.1:8081/v1/auth?x=1")
        #expect(e.host == "127.0.0.1" && e.port == 8081 && e.path == "/v1/auth?x=1" && e.hostHeader == "127.0.0.1:8081")
        #expect(e.address != nil)
        let d = try AuthEndpoint(url: "http://auth.internal")
        #expect(d.port == 80 && d.path == "/" && d.address == nil)
        #expect(throws: AuthEndpoint.Invalid.self) { try AuthEndpoint(url: "http://user:pw@host/") }
    }
}
