import COpenSSL
import Glibc
import Runtime

/// The client side of TLS for outgoing connections (`rediss://`, `switchboard-bench --tls`): one OpenSSL
/// `SSL_CTX` with `TLS_client_method`, peer verification on (off only for the bench, which measures cost
/// against a throwaway loopback certificate), trust from a CA file (or the system store), an optional client
/// certificate (mutual TLS), optional ALPN, TLS 1.2 at least. No session is kept for resumption.
///
/// Server-name verification (RFC 6125 via `SSL_set1_host`, or the IP address for a numeric name via
/// `X509_VERIFY_PARAM_set1_ip_asc`) is per connection: `makeSSL(fd:serverName:verifyName:)`. SNI
/// (RFC 6066 §3) is sent for DNS names only.
///
/// Immutable after `init`; any loop may create connections from it.
public final class TLSClientContext: @unchecked Sendable {
    private let context: OpaquePointer

    /// - Parameters:
    ///   - caFile: PEM file of the CAs to trust; nil trusts the system store (`SSL_CTX_set_default_verify_paths`).
    ///   - certificate: a client certificate chain and its key (PEM), for servers that ask for one (`tls-auth-clients`).
    ///   - minimumVersion: TLS 1.2 (default) or 1.3.
    ///   - verifyPeer: false skips certificate verification altogether (the bench only; `caFile` is then unused).
    ///   - alpn: protocols offered by ALPN (RFC 7301), e.g. `["http/1.1"]`; none by default.
    /// Errors (`TLSConfigurationError`, one line): an unreadable or non-PEM file, a key that is not the
    /// certificate's, OpenSSL refusing a setting.
    public init(
        caFile: String?, certificate: TLSCertificatePair? = nil, minimumVersion: TLSVersion = .tls12,
        verifyPeer: Bool = true, alpn: [String] = []
    ) throws(TLSConfigurationError) {
        guard let ctx = SSL_CTX_new(TLS_client_method()) else {
            throw TLSConfigurationError("OpenSSL cannot create a TLS client context: \(TLSContext.lastError())")
        }
        do throws(TLSConfigurationError) {
            guard cshim_SSL_CTX_set_min_proto_version(ctx, minimumVersion.protocolVersion) == 1 else {
                throw TLSConfigurationError("OpenSSL refused TLS \(minimumVersion.rawValue) as the minimum version")
            }
            _ = cshim_SSL_CTX_set_mode(ctx, Int(SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_ENABLE_PARTIAL_WRITE))
            _ = SSL_CTX_set_options(ctx, cshim_SSL_OP_NO_RENEGOTIATION | cshim_SSL_OP_NO_COMPRESSION)
            SSL_CTX_set_verify(ctx, verifyPeer ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, nil)
            ERR_clear_error()
            if !alpn.isEmpty {
                let wire = alpn.flatMap { [UInt8(clamping: $0.utf8.count)] + Array($0.utf8) }
                guard SSL_CTX_set_alpn_protos(ctx, wire, UInt32(wire.count)) == 0 else { throw TLSConfigurationError("OpenSSL refused the ALPN list \(alpn)") }
            }
            if !verifyPeer {
                // Nothing to trust: the bench accepts any certificate.
            } else if let caFile {
                guard access(caFile, R_OK) == 0 else { throw TLSConfigurationError("\(caFile): cannot read (\(String(cString: strerror(errno))))") }
                guard SSL_CTX_load_verify_locations(ctx, caFile, nil) == 1 else {
                    throw TLSConfigurationError("\(caFile): no PEM CA certificate (\(TLSContext.lastError()))")
                }
            } else if SSL_CTX_set_default_verify_paths(ctx) != 1 {
                throw TLSConfigurationError("OpenSSL cannot load the system CA store: \(TLSContext.lastError())")
            }
            if let pair = certificate {
                for path in [pair.certificatePath, pair.keyPath] {
                    guard access(path, R_OK) == 0 else { throw TLSConfigurationError("\(path): cannot read (\(String(cString: strerror(errno))))") }
                }
                guard SSL_CTX_use_certificate_chain_file(ctx, pair.certificatePath) == 1 else {
                    throw TLSConfigurationError("\(pair.certificatePath): not a PEM certificate chain (\(TLSContext.lastError()))")
                }
                guard SSL_CTX_use_PrivateKey_file(ctx, pair.keyPath, SSL_FILETYPE_PEM) == 1, SSL_CTX_check_private_key(ctx) == 1 else {
                    throw TLSConfigurationError("\(pair.keyPath) is not a PEM private key of \(pair.certificatePath) (\(TLSContext.lastError()))")
                }
            }
        } catch {
            SSL_CTX_free(ctx)
            throw error
        }
        context = ctx
    }

    deinit { SSL_CTX_free(context) }

    /// A client transport for a socket that does not exist yet (the bench's connections): its `SSL*` is made
    /// with the fd on first use (``TLSTransport/init(client:serverName:verifyName:metrics:)``).
    public func makeTransport(serverName: String, verifyName: Bool, metrics: TLSMetrics) -> TLSTransport {
        TLSTransport(client: self, serverName: serverName, verifyName: verifyName, metrics: metrics)
    }

    /// A new client-side `SSL*` on `fd` in connect state, or nil when OpenSSL refuses (out of memory, a name
    /// it cannot check). `serverName` is sent as SNI when it is a DNS name; with `verifyName` the server's
    /// certificate must cover it (subjectAltName DNS or IP entry); without, only the chain is verified.
    func makeSSL(fd: CInt, serverName: String, verifyName: Bool) -> OpaquePointer? {
        guard let ssl = SSL_new(context) else { return nil }
        let isAddress = Socket.isNumericAddress(serverName)
        var ok = SSL_set_fd(ssl, fd) == 1
        if ok && !isAddress && !serverName.isEmpty { ok = cshim_SSL_set_tlsext_host_name(ssl, serverName) == 1 }
        if ok && verifyName {
            if isAddress {
                ok = X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), serverName) == 1
            } else {
                ok = SSL_set1_host(ssl, serverName) == 1
            }
        }
        guard ok else {
            SSL_free(ssl)
            return nil
        }
        SSL_set_connect_state(ssl)
        return ssl
    }
}
