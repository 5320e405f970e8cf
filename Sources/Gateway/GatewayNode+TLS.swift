import CLinux
import Foundation
import Glibc
import Runtime
import TLS

extension GatewayNode {
    /// Reloads the certificates of both ports from the configured paths (SIGHUP, or the files changed). New handshakes use the new
    /// ones; open connections keep the session they have. A file that cannot be loaded is logged and the
    /// current certificates stay. Returns true when new certificates were installed. Any thread.
    @discardableResult
    public func reloadTLS() -> Bool {
        var publicContext: TLSContext? = nil
        var adminContext: TLSContext? = nil
        do throws(TLSConfigurationError) {
            if !config.tlsPairs.isEmpty { publicContext = try TLSContext(pairs: config.tlsPairs, minimumVersion: config.tlsMinimumVersion) }
            if let pair = config.adminTLSPair { adminContext = try TLSContext(pairs: [pair], minimumVersion: config.tlsMinimumVersion) }
        } catch {
            tlsReloadFailures.add(1, ordering: .relaxed)
            logger.error("TLS reload failed: keeping the current certificates", ["error": .string(error.description)])
            return false
        }
        guard publicContext != nil || adminContext != nil else {
            logger.info("SIGHUP: no TLS certificates configured, nothing to reload")
            return false
        }
        let done = DispatchGroup()
        let (newPublic, newAdmin) = (publicContext, adminContext)
        for gl in loops {
            done.enter()
            gl.loop.execute {
                if let newPublic { gl.tls = newPublic }
                if let newAdmin { gl.adminTLS = newAdmin }
                done.leave()
            }
        }
        _ = done.wait(timeout: .now() + .seconds(2))
        tlsReloads.add(1, ordering: .relaxed)
        var fields: [(String, LogValue)] = []
        if let publicContext { fields.append(("expires", .string(Self.isoDate(publicContext.earliestExpiry)))) }
        if let adminContext { fields.append(("admin_expires", .string(Self.isoDate(adminContext.earliestExpiry)))) }
        logger.log(.info, "TLS certificates reloaded", pairs: fields)
        warnExpiredCertificates([publicContext, adminContext].compactMap { $0 })
        return true
    }

    /// Startup and reload: an expired certificate is served (clients decide), but said loudly.
    func warnExpiredCertificates(_ contexts: [TLSContext]) {
        for context in contexts {
            for (pair, expiry) in zip(context.pairs, context.expiries) where expiry >= 0 && expiry < Int(Date().timeIntervalSince1970) {
                logger.warn(
                    "TLS certificate expired: serving it anyway, clients will refuse it",
                    ["certificate": .string(pair.certificatePath), "not_after": .string(Self.isoDate(expiry))])
            }
        }
    }

    /// Waits for SIGHUP on a thread of its own (the signal is blocked everywhere by `blockSignals`) and
    /// reloads the certificates each time. With TLS configured and `--tls-reload-interval` above 0 the wait
    /// times out at that interval and the thread `stat`s the certificate and key files (one syscall each):
    /// files that changed and then stayed the same for one more interval are reloaded the same way
    /// (`CertificateFileWatch` says why it waits).
    func startReloadThread() {
        let paths = watchedCertificatePaths
        let intervalMs = paths.isEmpty ? 0 : config.tlsReloadIntervalMs
        let t = Thread {
            var watch = CertificateFileWatch(baseline: paths.map { FileStamp.of(path: $0) })
            while true {
                let sig = intervalMs > 0 ? Self.waitForSIGHUP(timeoutMs: intervalMs) : clinux_wait_signals(SIGHUP, SIGHUP, 0)
                if sig == SIGHUP {
                    self.logger.info("SIGHUP: reloading TLS certificates")
                    let stamps = paths.map { FileStamp.of(path: $0) }
                    self.reloadTLS()
                    watch.reset(to: stamps)
                } else if intervalMs > 0, watch.observe(paths.map { FileStamp.of(path: $0) }) {
                    self.logger.info("TLS certificate files changed: reloading", ["interval_ms": .int(intervalMs)])
                    self.reloadTLS()
                }
            }
        }
        t.name = "tls-reload"
        t.start()
    }

    /// Every certificate and key path of both ports, in a fixed order (what the file watch stats).
    var watchedCertificatePaths: [String] {
        config.tlsPairs.flatMap { [$0.certificatePath, $0.keyPath] } + (config.adminTLSPair.map { [$0.certificatePath, $0.keyPath] } ?? [])
    }

    /// `sigtimedwait` for SIGHUP (blocked on every thread): SIGHUP, or 0 when `timeoutMs` passed first.
    private static func waitForSIGHUP(timeoutMs: Int) -> CInt {
        var set = sigset_t()
        sigemptyset(&set)
        sigaddset(&set, SIGHUP)
        var ts = timespec(tv_sec: timeoutMs / 1000, tv_nsec: (timeoutMs % 1000) * 1_000_000)
        let sig = sigtimedwait(&set, nil, &ts)
        return sig == SIGHUP ? SIGHUP : 0
    }

    /// The URLs the node serves, for the startup log: `wss://` / `https://` when TLS terminates here.
    func listeningFields() -> [(String, LogValue)] {
        let scheme = config.tls == nil ? "ws" : "wss"
        // The URLs to connect to, with the ports actually bound (port 0 picks one); IPv6 hosts in brackets.
        func url(_ scheme: String, _ host: String, _ port: Int, _ path: String) -> String {
            "\(scheme)://\(host.contains(":") ? "[\(host)]" : host):\(port)\(path)"
        }
        var fields: [(String, LogValue)] = [("ws", .string(url(scheme, config.host, boundPort, config.wsPath)))]
        if let echo = config.echoPath { fields.append(("echo", .string(url(scheme, config.host, boundPort, echo)))) }
        if config.adminPort != 0 {
            fields.append(("admin", .string(url(config.adminTLS == nil ? "http" : "https", config.adminHost, config.adminPort, "/"))))
        }
        if let tls = config.tls {
            fields.append(("tls_certificates", .int(tls.pairs.count)))
            fields.append(("tls_min_version", .string(tls.minimumVersion.rawValue)))
            fields.append(("tls_expires", .string(Self.isoDate(tls.earliestExpiry))))
        }
        return fields
    }

    static func isoDate(_ epochSeconds: Int) -> String {
        guard epochSeconds >= 0 else { return "unknown" }
        return ISO8601DateFormatter().string(from: Date(timeIntervalSince1970: TimeInterval(epochSeconds)))
    }

    /// The TLS families (always exported, so dashboards and the expiry alert resolve on a plain node too).
    /// Called on loop 0 (the admin listener's loop), which reads its own current certificates.
    func writeTLSMetrics(to w: inout PrometheusWriter) {
        let listeners: [(String, (GatewayLoop) -> TLSMetrics)] = [("public", { $0.tlsMetrics }), ("admin", { $0.adminTLSMetrics })]
        let enabled = listeners.filter { $0.0 == "public" ? config.tls != nil : config.adminTLS != nil }
        var handshakes: [(labels: String, value: Int)] = []
        for (listener, metrics) in enabled {
            for (i, version) in ["1.2", "1.3"].enumerated() {
                handshakes.append(("{listener=\"\(listener)\",result=\"ok\",version=\"\(version)\"}", loops.reduce(0) { $0 + metrics($1).completed[i].load() }))
            }
            for result in TLSHandshakeResult.allCases where result != .ok {
                handshakes.append(
                    (
                        "{listener=\"\(listener)\",result=\"\(result.rawValue)\",version=\"none\"}",
                        loops.reduce(0) { $0 + metrics($1).failures(result).load() }
                    ))
            }
        }
        w.family("switchboard_tls_handshakes_total", .counter, "TLS handshakes by listener, result (ok or why it failed) and version.", handshakes)
        w.family(
            "switchboard_tls_plaintext_rejections_total", .counter,
            "Connections to a TLS port whose first byte was not a TLS handshake (plain HTTP), answered 400.",
            enabled.map { (listener, metrics) in ("{listener=\"\(listener)\"}", loops.reduce(0) { $0 + metrics($1).plaintextRejections.load() }) })
        w.histogram(
            "switchboard_tls_handshake_seconds", "TLS handshakes on the public port, first ClientHello byte to the handshake's end.",
            loops.map { $0.tlsMetrics.handshakeDuration })
        var expiries: [(labels: String, value: Int)] = []
        let current: [(String, TLSContext?)] = [("public", loops.first?.tls), ("admin", loops.first?.adminTLS)]
        for (listener, context) in current {
            guard let context else { continue }
            for (pair, expiry) in zip(context.pairs, context.expiries) {
                expiries.append(("{listener=\"\(listener)\",certificate=\"\(Self.labelValue(pair.certificatePath))\"}", expiry))
            }
        }
        w.family(
            "switchboard_tls_certificate_expiry_timestamp_seconds", .gauge,
            "notAfter of each served certificate (Unix seconds), after the last reload.", expiries)
        w.family(
            "switchboard_tls_reloads_total", .counter, "Certificate reloads (SIGHUP or changed files), by result.",
            [("{result=\"ok\"}", tlsReloads.load(ordering: .relaxed)), ("{result=\"failed\"}", tlsReloadFailures.load(ordering: .relaxed))])
    }

    /// Prometheus label value escaping (backslash, quote, newline).
    static func labelValue(_ s: String) -> String {
        s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"").replacingOccurrences(of: "\n", with: "\\n")
    }
}
