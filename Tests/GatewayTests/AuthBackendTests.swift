import Foundation
import Glibc
import Protocol
import Runtime
import Testing

@testable import Gateway

/// The auth backend against the real binary and a fake backend on 127.0.0.1: retries with backoff, the
/// circuit breaker, the cache, final rejections, and a hanging backend (../shared/cases C29).
@Suite(.serialized) struct AuthBackendTests {
    func backendGateway(_ backend: FakeAuthBackend, _ extra: [String], threads: Int = 2) throws -> GatewayProcess {
        try GatewayProcess(["--auth-url", backend.url] + extra, threads: threads)
    }

    func bearer(_ t: String) -> [HTTPHeader] { [HTTPHeader("Authorization", "Bearer \(t)"), HTTPHeader("Origin", "https://app.example.com")] }

    @Test func backendFailingTwiceThenSucceedingAdmitsTheClientAfterBackoff() throws {
        let backend = try FakeAuthBackend { i, _ in i <= 2 ? .respond(503, "{}") : .respond(200, FakeAuthBackend.okBody(user: "carol", rooms: ["user:{sub}"])) }
        let gw = try backendGateway(backend, ["--auth-retries", "2", "--auth-backoff-base", "200ms", "--auth-backoff-cap", "1s"])
        let started = Date()
        let c = try WSClient(port: gw.port, headers: bearer("opaque-token-1"))
        let elapsed = Date().timeIntervalSince(started)
        #expect(try c.join("user:carol").op == "joined")
        #expect(try c.join("user:alice").code == "forbidden")
        let reqs = backend.requests
        #expect(reqs.count == 3)
        #expect(elapsed < 2.5)
        // The request carries the token, the client address and the headers of interest.
        let body = try JSONSerialization.jsonObject(with: Data(reqs[0].body.utf8)) as? [String: Any]
        #expect(body?["token"] as? String == "opaque-token-1")
        #expect(body?["ip"] as? String == "127.0.0.1")
        #expect((body?["headers"] as? [String: String])?["origin"] == "https://app.example.com")
        #expect(try gw.metric("switchboard_auth_backend_retries_total") == 2)
        #expect(try gw.metric("switchboard_auth_backend_requests_total{outcome=\"error\"}") == 2)
        #expect(try gw.metric("switchboard_auth_backend_requests_total{outcome=\"ok\"}") == 1)
        #expect(try gw.metric("switchboard_auth_breaker_state") == 0)
    }

    @Test func downBackendOpensTheBreakerWhichFailsFastAndRecoversWhenTheBackendIsBack() throws {
        let backend = try FakeAuthBackend()
        backend.stop()  // refused connections
        let gw = try backendGateway(
            backend,
            [
                "--auth-retries", "2", "--auth-backoff-base", "50ms", "--auth-breaker-threshold", "3",
                "--auth-breaker-cooldown", "1500ms", "--auth-cache-ttl", "0s"
            ])
        // Three refused attempts: 503 with Retry-After, never a 401.
        let first = try upgradeAnswer(port: gw.port, headers: bearer("t-1"))
        #expect(first.status == 503 && headerValue(first.text, "Retry-After") != nil, "\(first.text.prefix(200))")
        #expect(try gw.metric("switchboard_auth_breaker_state") == 1)
        #expect(try gw.metric("switchboard_auth_breaker_opens_total") == 1)
        // Open: fails fast, without calling.
        for i in 0..<5 {
            let t0 = Date()
            let a = try upgradeAnswer(port: gw.port, headers: bearer("t-fast-\(i)"))
            #expect(a.status == 503 && Date().timeIntervalSince(t0) < 0.3)
            #expect(Int(headerValue(a.text, "Retry-After") ?? "") ?? 0 >= 1)
        }
        #expect(try gw.metric("switchboard_auth_backend_fast_fails_total") == 5)
        // After the upgrade (auth op), an unavailable backend closes 1013, not 4002.
        let c = try WSClient(port: gw.port, expectHello: false)
        try c.sendOp(#"{"op":"auth","token":"t-op"}"#)
        #expect(try c.expectClose() == 1013)
        #expect(backend.requests.isEmpty)
        // The backend comes back: after the cooldown one probe goes through and closes the breaker.
        try backend.start()
        usleep(1_600_000)
        let back = try WSClient(port: gw.port, headers: bearer("t-2"))
        #expect(try back.join("lobby").op == "joined")
        #expect(try gw.metric("switchboard_auth_breaker_state") == 0)
        #expect(backend.requests.count == 1)
        let d = try WSClient(port: gw.port, headers: bearer("t-3"))
        _ = d
        #expect(backend.requests.count == 2)
        #expect(try gw.metric("switchboard_handshakes_rejected_total{status=\"401\"}") == 0)
    }

    @Test func cacheAbsorbsAThousandReconnectsOfOneUserWithOneBackendCallPerTTL() throws {
        let backend = try FakeAuthBackend()
        let gw = try backendGateway(backend, ["--auth-cache-ttl", "3s"])
        let started = Date()
        let failures = Lock(0)
        DispatchQueue.concurrentPerform(iterations: 8) { worker in
            for _ in 0..<125 {
                if (try? upgradeAnswer(port: gw.port, headers: [HTTPHeader("Authorization", "Bearer same-user-token")]).status) != 101 {
                    failures.withLock { $0 += 1 }
                }
            }
        }
        let elapsed = Date().timeIntervalSince(started)
        #expect(failures.withLock { $0 } == 0)
        let calls = backend.requests.count
        #expect(calls >= 1 && calls <= Int(elapsed / 3) + 1, "\(calls) backend calls for 1000 reconnects in \(elapsed) s")
        #expect(try gw.metric("switchboard_auth_cache_total{result=\"miss\"}") == Double(calls))
        // After the TTL the next reconnect asks again, once.
        usleep(3_100_000)
        #expect(try upgradeAnswer(port: gw.port, headers: [HTTPHeader("Authorization", "Bearer same-user-token")]).status == 101)
        #expect(try upgradeAnswer(port: gw.port, headers: [HTTPHeader("Authorization", "Bearer same-user-token")]).status == 101)
        #expect(backend.requests.count == calls + 1)
    }

    @Test func backendRejectionIsFinalAndNeverRetried() throws {
        let backend = try FakeAuthBackend { _, body in body.contains("revoked") ? .respond(401, "{}") : .respond(403, "{}") }
        let gw = try backendGateway(backend, ["--auth-retries", "3"])
        let a = try upgradeAnswer(port: gw.port, headers: [HTTPHeader("Authorization", "Bearer revoked-token")])
        #expect(a.status == 401)
        #expect(backend.requests.count == 1)
        let c = try WSClient(port: gw.port, expectHello: false)
        try c.sendOp(#"{"op":"auth","token":"forbidden-token"}"#)
        #expect(try c.expectClose() == 4002)
        #expect(backend.requests.count == 2)
        #expect(try gw.metric("switchboard_auth_backend_retries_total") == 0)
        #expect(try gw.metric("switchboard_auth_attempts_total{result=\"rejected\"}") == 2)
        // Rejections are not cached: asking again asks the backend again.
        _ = try upgradeAnswer(port: gw.port, headers: [HTTPHeader("Authorization", "Bearer revoked-token")])
        #expect(backend.requests.count == 3)
    }

    /// ../shared/cases C29: the backend accepts TCP but never answers, then recovers.
    @Test func aDrainAnswersHandshakesStillWaitingForTheBackend503() throws {
        let backend = try FakeAuthBackend { _, _ in .hang(20) }
        let gw = try backendGateway(
            backend,
            [
                "--auth-try-timeout", "15s", "--auth-retries", "0", "--auth-deadline", "15s",
                "--drain-delay", "0", "--drain-window", "1s", "--drain-deadline", "10s"
            ])
        let answers = Lock<[Int]>([])
        let group = DispatchGroup()
        for i in 0..<5 {
            group.enter()
            Thread {
                let a = (try? upgradeAnswer(port: gw.port, headers: [HTTPHeader("Authorization", "Bearer waiting-\(i)")], timeout: 10)) ?? (status: 0, text: "")
                answers.withLock { $0.append(a.status) }
                group.leave()
            }.start()
        }
        let deadline = Date().addingTimeInterval(5)
        while backend.requests.count < 5 && Date() < deadline { usleep(20_000) }
        #expect(backend.requests.count == 5, "every handshake is waiting for the backend")
        let t0 = Date()
        let status = gw.stop(signal: SIGTERM, timeout: 12)
        group.wait()
        #expect(status == 0)
        #expect(answers.withLock { $0 } == [503, 503, 503, 503, 503], "not a reset at exit: \(answers.withLock { $0 })")
        #expect(Date().timeIntervalSince(t0) < 5)
    }

    @Test func hangingBackendIsAnswered503WithinTheBoundThenRecovers() throws {
        let recovered = Lock(false)
        let backend = try FakeAuthBackend { _, _ in recovered.withLock { $0 } ? .respond(200, FakeAuthBackend.okBody()) : .hang(8) }
        // A high breaker threshold so every client makes all its attempts (the breaker has its own test).
        let gw = try backendGateway(
            backend,
            [
                "--auth-try-timeout", "1s", "--auth-retries", "2", "--auth-backoff-base", "100ms",
                "--auth-deadline", "5s", "--auth-breaker-threshold", "1000"
            ])
        let results = Lock<[(status: Int, seconds: Double, retryAfter: String?)]>([])
        // 20 clients at once (threads, not concurrentPerform, which runs only as many as there are cores).
        let group = DispatchGroup()
        for i in 0..<20 {
            group.enter()
            Thread {
                let t0 = Date()
                let a = (try? upgradeAnswer(port: gw.port, headers: [HTTPHeader("Authorization", "Bearer client-\(i)")], timeout: 10)) ?? (status: 0, text: "")
                results.withLock { $0.append((a.status, Date().timeIntervalSince(t0), headerValue(a.text, "Retry-After"))) }
                group.leave()
            }.start()
        }
        group.wait()
        let r = results.withLock { $0 }
        #expect(r.count == 20)
        for x in r {
            #expect(x.status == 503, "never a 101 followed by silence, never 401/403: got \(x.status)")
            #expect(x.seconds < 4.5, "answered within timeout × attempts + backoff: \(x.seconds) s")
            #expect(x.retryAfter != nil)
        }
        let reqs = backend.requests
        #expect(reqs.count <= 60)
        // Per client, attempts are spaced by the per-try timeout plus a jittered wait that grows per retry.
        var gaps: [[Double]] = []
        for i in 0..<20 {
            let times = reqs.filter { $0.body.contains("\"client-\(i)\"") }.map(\.at).sorted()
            #expect(times.count == 3, "client-\(i): \(times.count) attempts")
            gaps.append(zip(times.dropFirst(), times).map { $0.timeIntervalSince($1) })
        }
        let firstGaps = gaps.compactMap { $0.first }
        let secondGaps = gaps.compactMap { $0.count > 1 ? $0[1] : nil }
        let firstOK = firstGaps.allSatisfy { (g: Double) -> Bool in g >= 0.95 && g < 1.4 }
        let secondOK = secondGaps.allSatisfy { (g: Double) -> Bool in g >= 0.95 && g < 1.5 }
        #expect(firstOK && secondOK, "\(gaps)")
        let distinct = Set(firstGaps.map { (g: Double) -> Int in Int(g * 1000) }).count
        #expect(distinct > 5, "jitter: the gaps vary \(firstGaps)")
        let meanFirst: Double = firstGaps.reduce(0, +) / Double(max(1, firstGaps.count))
        let meanSecond: Double = secondGaps.reduce(0, +) / Double(max(1, secondGaps.count))
        #expect(meanSecond > meanFirst, "on average the wait grows with the retry number")
        #expect(try gw.metric("switchboard_auth_backend_inflight") == 0)
        #expect(try gw.metric("switchboard_auth_attempts_total{result=\"unavailable\"}") == 20)
        recovered.withLock { $0 = true }
        let t0 = Date()
        let ok = try upgradeAnswer(port: gw.port, headers: [HTTPHeader("Authorization", "Bearer after-recovery")])
        #expect(ok.status == 101)
        #expect(Date().timeIntervalSince(t0) < 1)
        #expect(try gw.metric("switchboard_connections_open") ?? 0 <= 1)
    }

    @Test func jwtIsCheckedBeforeTheBackendIsAsked() throws {
        let backend = try FakeAuthBackend { _, _ in .respond(200, FakeAuthBackend.okBody(user: "alice", rooms: ["backend-room"])) }
        let gw = try GatewayProcess(["--auth-url", backend.url, "--jwt-secret", TestKeys.shared.secret], threads: 1)
        #expect(try upgradeAnswer(port: gw.port, headers: [HTTPHeader("Authorization", "Bearer not-a-jwt")]).status == 401)
        #expect(backend.requests.isEmpty, "a token that fails locally never reaches the backend")
        let c = try WSClient(port: gw.port, headers: [HTTPHeader("Authorization", "Bearer \(TokenFactory.make())")])
        #expect(try c.join("backend-room").op == "joined", "the backend's answer decides the rooms")
        #expect(try c.join("lobby").code == "forbidden")
        #expect(backend.requests.count == 1)
    }
}
