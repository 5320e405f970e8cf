import COpenSSL
import Foundation
import Glibc

/// The lowest TLS version a server accepts (`--tls-min-version`).
public enum TLSVersion: String, Sendable, CaseIterable {
    case tls12 = "1.2"
    case tls13 = "1.3"

    var protocolVersion: CInt { self == .tls12 ? CInt(TLS1_2_VERSION) : CInt(TLS1_3_VERSION) }
}

/// One certificate chain and its private key, both PEM files (`--tls-cert` / `--tls-key`).
public struct TLSCertificatePair: Sendable, Equatable {
    /// PEM file: the leaf certificate first, then the intermediates (a "full chain").
    public var certificatePath: String
    /// PEM file: the private key of the leaf (PKCS#8, PKCS#1 or SEC1; unencrypted).
    public var keyPath: String

    public init(certificatePath: String, keyPath: String) {
        self.certificatePath = certificatePath
        self.keyPath = keyPath
    }
}

/// A certificate or key that cannot serve: the description is one line naming the file and the reason
/// (printed as is by the startup check, which exits 2, and by a failed SIGHUP reload).
public struct TLSConfigurationError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// The server side of TLS for one listener: one OpenSSL `SSL_CTX` per certificate pair, the first being the
/// default, the others chosen by SNI (RFC 6066 §3) when the requested name matches their certificate
/// (`X509_check_host`: subjectAltName DNS entries, wildcards per RFC 6125).
///
/// Settings (identical on every pair's context): minimum version 1.2 or 1.3, Mozilla's "intermediate"
/// TLS 1.2 ciphers (ECDHE with AES-GCM or ChaCha20-Poly1305) and OpenSSL's TLS 1.3 suites, ALPN
/// `http/1.1` (RFC 7301; a client offering only other protocols gets no ALPN answer rather than an
/// alert), no renegotiation (`SSL_OP_NO_RENEGOTIATION`), no compression, no server session cache
/// (stateless TLS 1.3 tickets still allow resumption; nothing is stored per session), record buffers
/// released while idle (`SSL_MODE_RELEASE_BUFFERS`), partial and moving-buffer writes for the socket's queue.
///
/// Immutable after `init`, so any loop may create connections from it; a reload builds a new one.
public final class TLSContext: @unchecked Sendable {
    /// The pairs in the order given; `pairs[0]` is the default certificate.
    public let pairs: [TLSCertificatePair]
    public let minimumVersion: TLSVersion
    /// Each leaf's notAfter, in seconds since the Unix epoch, in `pairs` order.
    public let expiries: [Int]
    /// `SSL_CTX*` per pair (freed in `deinit`; `SSL` objects hold their own reference).
    private let contexts: [OpaquePointer]
    /// Each pair's leaf certificate (owned by its context).
    private let leaves: [OpaquePointer]

    /// Loads and checks every pair. Errors (`TLSConfigurationError`, one line): a file that cannot be read,
    /// a file with no PEM certificate or key, a key that is not the certificate's, OpenSSL refusing a setting.
    public init(pairs: [TLSCertificatePair], minimumVersion: TLSVersion = .tls12) throws(TLSConfigurationError) {
        guard !pairs.isEmpty else { throw TLSConfigurationError("no certificate given") }
        var contexts: [OpaquePointer] = []
        var leaves: [OpaquePointer] = []
        var expiries: [Int] = []
        do throws(TLSConfigurationError) {
            for pair in pairs {
                let ctx = try TLSContext.makeContext(pair, minimumVersion: minimumVersion)
                contexts.append(ctx)
                guard let leaf = SSL_CTX_get0_certificate(ctx) else { throw TLSConfigurationError("\(pair.certificatePath): no certificate loaded") }
                leaves.append(leaf)
                expiries.append(Int(cshim_X509_not_after_epoch(leaf)))
            }
        } catch {
            for c in contexts { SSL_CTX_free(c) }
            throw error
        }
        self.pairs = pairs
        self.minimumVersion = minimumVersion
        self.contexts = contexts
        self.leaves = leaves
        self.expiries = expiries
        // SNI selection runs on the context a connection starts with (the default); the callback's argument
        // is this object, kept alive by every `TLSTransport` until its handshake ends.
        if contexts.count > 1 {
            let me = Unmanaged.passUnretained(self).toOpaque()
            for c in contexts {
                _ = cshim_SSL_CTX_set_tlsext_servername_callback(c, tlsServerNameCallback)
                _ = cshim_SSL_CTX_set_tlsext_servername_arg(c, me)
            }
        }
    }

    deinit {
        for c in contexts { SSL_CTX_free(c) }
    }

    /// The earliest notAfter over every pair (seconds since the epoch).
    public var earliestExpiry: Int { expiries.min() ?? 0 }

    /// Pairs whose certificate has expired at `now` (seconds since the epoch): serve them, but warn.
    public func expiredPairs(now: Int = Int(Date().timeIntervalSince1970)) -> [TLSCertificatePair] {
        zip(pairs, expiries).filter { $0.1 >= 0 && $0.1 < now }.map { $0.0 }
    }

    /// A new server-side `SSL*` on `fd` from the default context (nil when OpenSSL cannot allocate).
    func makeSSL(fd: CInt) -> OpaquePointer? {
        guard let ssl = SSL_new(contexts[0]) else { return nil }
        guard SSL_set_fd(ssl, fd) == 1 else {
            SSL_free(ssl)
            return nil
        }
        SSL_set_accept_state(ssl)
        return ssl
    }

    /// The index of the pair whose certificate covers `host` (SNI), or nil (the default stays).
    func pairIndex(forServerName host: UnsafePointer<CChar>) -> Int? {
        let length = strlen(host)
        for (i, leaf) in leaves.enumerated() where X509_check_host(leaf, host, length, 0, nil) == 1 { return i }
        return nil
    }

    /// Switches `ssl` to the context of pair `i` (certificate and key; every context has the same settings).
    func select(_ i: Int, for ssl: OpaquePointer) {
        if i != 0 { _ = SSL_set_SSL_CTX(ssl, contexts[i]) }
    }

    // MARK: - Loading

    /// Mozilla "intermediate" TLS 1.2 list (forward secrecy, AEAD only); TLS 1.3 keeps OpenSSL's suites.
    static let tls12Ciphers =
        "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"
        + "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"

    private static func makeContext(_ pair: TLSCertificatePair, minimumVersion: TLSVersion) throws(TLSConfigurationError) -> OpaquePointer {
        for path in [pair.certificatePath, pair.keyPath] {
            guard access(path, R_OK) == 0 else { throw TLSConfigurationError("\(path): cannot read (\(String(cString: strerror(errno))))") }
        }
        guard let ctx = SSL_CTX_new(TLS_server_method()) else { throw TLSConfigurationError("OpenSSL cannot create a TLS context: \(lastError())") }
        do throws(TLSConfigurationError) {
            try configure(ctx, minimumVersion: minimumVersion)
            ERR_clear_error()
            guard SSL_CTX_use_certificate_chain_file(ctx, pair.certificatePath) == 1 else {
                throw TLSConfigurationError("\(pair.certificatePath): not a PEM certificate chain (\(lastError()))")
            }
            guard SSL_CTX_use_PrivateKey_file(ctx, pair.keyPath, SSL_FILETYPE_PEM) == 1 else {
                // OpenSSL also lands here when the key parses but does not match the certificate.
                let why = lastError()
                if why.contains("values mismatch") || why.contains("key values") {
                    throw TLSConfigurationError("\(pair.keyPath) is not the private key of \(pair.certificatePath) (key and certificate do not match)")
                }
                throw TLSConfigurationError("\(pair.keyPath): not a PEM private key (\(why))")
            }
            guard SSL_CTX_check_private_key(ctx) == 1 else {
                throw TLSConfigurationError("\(pair.keyPath) is not the private key of \(pair.certificatePath) (key and certificate do not match)")
            }
        } catch {
            SSL_CTX_free(ctx)
            throw error
        }
        return ctx
    }

    private static func configure(_ ctx: OpaquePointer, minimumVersion: TLSVersion) throws(TLSConfigurationError) {
        guard cshim_SSL_CTX_set_min_proto_version(ctx, minimumVersion.protocolVersion) == 1 else {
            throw TLSConfigurationError("OpenSSL refused TLS \(minimumVersion.rawValue) as the minimum version")
        }
        _ = SSL_CTX_set_options(ctx, cshim_SSL_OP_NO_RENEGOTIATION | cshim_SSL_OP_NO_COMPRESSION | cshim_SSL_OP_CIPHER_SERVER_PREFERENCE)
        _ = cshim_SSL_CTX_set_mode(ctx, Int(SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_ENABLE_PARTIAL_WRITE))
        // A server-side cache would keep every session (about 1 KiB each) for its timeout: memory that grows
        // with handshakes, not with connections.
        _ = cshim_SSL_CTX_set_session_cache_mode(ctx, Int(SSL_SESS_CACHE_OFF))
        guard SSL_CTX_set_cipher_list(ctx, tls12Ciphers) == 1 else { throw TLSConfigurationError("OpenSSL refused the cipher list: \(lastError())") }
        guard cshim_SSL_CTX_set1_groups_list(ctx, "X25519:P-256:P-384") == 1 else { throw TLSConfigurationError("OpenSSL refused the groups: \(lastError())") }
        cshim_SSL_CTX_select_alpn_http11(ctx)
    }

    /// The oldest queued OpenSSL error as text (and the queue cleared).
    static func lastError() -> String {
        let e = ERR_get_error()
        ERR_clear_error()
        guard e != 0 else { return "no detail from OpenSSL" }
        var buf = [UInt8](repeating: 0, count: 256)
        buf.withUnsafeMutableBufferPointer { p in p.baseAddress!.withMemoryRebound(to: CChar.self, capacity: p.count) { ERR_error_string_n(e, $0, p.count) } }
        return String(decoding: buf.prefix { $0 != 0 }, as: UTF8.self)
    }
}

/// SNI (RFC 6066 §3): switch to the pair whose certificate covers the requested name; unknown or absent
/// names keep the default certificate (never an alert: IP-address clients send no SNI).
private let tlsServerNameCallback: @convention(c) (OpaquePointer?, UnsafeMutablePointer<CInt>?, UnsafeMutableRawPointer?) -> CInt = { ssl, _, arg in
    guard let ssl, let arg, let name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name) else { return SSL_TLSEXT_ERR_OK }
    let context = Unmanaged<TLSContext>.fromOpaque(arg).takeUnretainedValue()
    if let i = context.pairIndex(forServerName: name) { context.select(i, for: ssl) }
    return SSL_TLSEXT_ERR_OK
}
