import COpenSSL
import Glibc
import Runtime

/// The client side of TLS for load generation (`switchboard-bench --tls`): one OpenSSL `SSL_CTX` with
/// TLS_client_method, TLS 1.2 or later, ALPN `http/1.1`, and **no certificate verification** (the bench
/// loads a loopback gateway serving a throwaway certificate; it measures cost, not trust). Every connection
/// does a full handshake: no session is kept for resumption, as with a crowd of new clients.
///
/// Immutable after `init`; any thread may make transports from it.
public final class TLSClientContext: @unchecked Sendable {
    private let ctx: OpaquePointer
    /// SNI sent in every ClientHello (RFC 6066 §3), or nil for none (what clients connecting to an IP do).
    public let serverName: String?

    /// Errors: `TLSConfigurationError` when OpenSSL refuses a setting.
    public init(serverName: String? = nil, minimumVersion: TLSVersion = .tls12) throws(TLSConfigurationError) {
        guard let ctx = SSL_CTX_new(TLS_client_method()) else { throw TLSConfigurationError("OpenSSL cannot create a TLS context: \(TLSContext.lastError())") }
        guard cshim_SSL_CTX_set_min_proto_version(ctx, minimumVersion.protocolVersion) == 1 else {
            SSL_CTX_free(ctx)
            throw TLSConfigurationError("OpenSSL refused TLS \(minimumVersion.rawValue) as the minimum version")
        }
        SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nil)
        _ = cshim_SSL_CTX_set_mode(ctx, Int(SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_ENABLE_PARTIAL_WRITE))
        _ = cshim_SSL_CTX_set_session_cache_mode(ctx, Int(SSL_SESS_CACHE_OFF))
        let alpn: [UInt8] = [8] + Array("http/1.1".utf8)
        _ = SSL_CTX_set_alpn_protos(ctx, alpn, UInt32(alpn.count))
        self.ctx = ctx
        self.serverName = serverName
    }

    deinit { SSL_CTX_free(ctx) }

    /// A transport for one new connection (its `SSL*` is made on first use, with the socket's fd).
    public func makeTransport() -> TLSClientTransport { TLSClientTransport(context: self) }

    fileprivate func makeSSL(fd: CInt) -> OpaquePointer? {
        guard let ssl = SSL_new(ctx) else { return nil }
        guard SSL_set_fd(ssl, fd) == 1 else {
            SSL_free(ssl)
            return nil
        }
        if let serverName { _ = cshim_SSL_set_tlsext_host_name(ssl, serverName) }
        SSL_set_connect_state(ssl)
        return ssl
    }
}

/// TLS on one connecting, non-blocking client socket (the bench's connections): the handshake starts with the
/// first write (the queued upgrade request) and runs on the socket's readiness like the server's
/// (`TLSTransport`); `WANT_READ` / `WANT_WRITE` map to `.wouldBlock` with the crossed-direction flags. After
/// it, each queued buffer is one `SSL_write`, and `read` decrypts records into the caller's buffer.
///
/// Loop-confined like its socket.
public final class TLSClientTransport: Transport {
    private let context: TLSClientContext
    private var ssl: OpaquePointer?
    private var established = false
    private var failed = false
    private var closeNotifySent = false
    /// A close or error met after data in the same `read`: returned by the next `read`.
    private var pendingEnd: TransportResult?
    public private(set) var readWaitsForWritable = false
    public private(set) var writeWaitsForReadable = false
    public private(set) var holdsUnreportedWrite = false

    init(context: TLSClientContext) { self.context = context }

    /// The negotiated version ("1.2", "1.3") once the handshake is done, else nil.
    public var version: String? {
        guard established, let ssl else { return nil }
        return SSL_version(ssl) == TLS1_3_VERSION ? "1.3" : "1.2"
    }

    /// Makes the `SSL*` on first use and advances the handshake: nil once it is done, else what to return.
    private func handshake(fd: CInt, forWrite: Bool) -> TransportResult? {
        if established { return nil }
        if failed { return .failed(EPROTO) }
        if ssl == nil {
            ssl = context.makeSSL(fd: fd)
            if ssl == nil {
                failed = true
                return .failed(ENOMEM)
            }
        }
        ERR_clear_error()
        let r = SSL_do_handshake(ssl)
        if r == 1 {
            established = true
            return nil
        }
        switch SSL_get_error(ssl, r) {
        case SSL_ERROR_WANT_READ:
            if forWrite { writeWaitsForReadable = true }
            return .wouldBlock
        case SSL_ERROR_WANT_WRITE:
            if !forWrite { readWaitsForWritable = true }
            return .wouldBlock
        case SSL_ERROR_SYSCALL where ERR_peek_error() == 0:
            let no = errno
            failed = true
            return no == 0 ? .eof : .failed(no)
        default:
            ERR_clear_error()
            failed = true
            return .failed(EPROTO)
        }
    }

    public func read(fd: CInt, into buffer: UnsafeMutableRawBufferPointer) -> TransportResult {
        readWaitsForWritable = false
        if let end = pendingEnd {
            pendingEnd = nil
            return end
        }
        if let r = handshake(fd: fd, forWrite: false) { return r }
        guard let ssl else { return .failed(EPROTO) }
        var total = 0
        while total < buffer.count {
            var got = 0
            ERR_clear_error()
            if SSL_read_ex(ssl, buffer.baseAddress! + total, buffer.count - total, &got) == 1 {
                total += got
                continue
            }
            let end: TransportResult
            switch SSL_get_error(ssl, 0) {
            case SSL_ERROR_WANT_READ:
                return total > 0 ? .done(total) : .wouldBlock
            case SSL_ERROR_WANT_WRITE:
                if total > 0 { return .done(total) }
                readWaitsForWritable = true
                return .wouldBlock
            case SSL_ERROR_ZERO_RETURN:
                end = .eof
            case SSL_ERROR_SYSCALL:
                let no = errno
                end = ERR_peek_error() == 0 && no != 0 ? .failed(no) : .eof
            default:
                // The gateway closing without close_notify (a reset) reads as EOF, as for a plain socket.
                end = cshim_ERR_GET_REASON(ERR_peek_error()) == cshim_SSL_R_UNEXPECTED_EOF_WHILE_READING ? .eof : .failed(EPROTO)
            }
            ERR_clear_error()
            if total > 0 {
                pendingEnd = end
                return .done(total)
            }
            return end
        }
        return .done(total)
    }

    public var hasBufferedInput: Bool {
        if pendingEnd != nil { return true }
        guard established, let ssl else { return false }
        return SSL_pending(ssl) > 0
    }

    public func write(fd: CInt, _ iov: UnsafeMutablePointer<iovec>, count: Int) -> TransportResult {
        writeWaitsForReadable = false
        if let r = handshake(fd: fd, forWrite: true) { return r == .eof ? .failed(EPIPE) : r }
        guard let ssl else { return .failed(EPIPE) }
        var total = 0
        for i in 0..<count {
            guard let base = iov[i].iov_base else { continue }
            let length = iov[i].iov_len
            var offset = 0
            while offset < length {
                var written = 0
                ERR_clear_error()
                if SSL_write_ex(ssl, base + offset, length - offset, &written) == 1 {
                    offset += written
                    total += written
                    holdsUnreportedWrite = false
                    continue
                }
                let err = SSL_get_error(ssl, 0)
                switch err {
                case SSL_ERROR_WANT_WRITE, SSL_ERROR_WANT_READ:
                    holdsUnreportedWrite = true
                    if err == SSL_ERROR_WANT_READ { writeWaitsForReadable = true }
                    return total > 0 ? .done(total) : .wouldBlock
                case SSL_ERROR_SYSCALL:
                    let no = errno
                    ERR_clear_error()
                    failed = true
                    return .failed(no == 0 ? EPIPE : no)
                default:
                    ERR_clear_error()
                    failed = true
                    return .failed(EPROTO)
                }
            }
        }
        return .done(total)
    }

    public func shutdownWrite(fd: CInt) -> TransportResult {
        writeWaitsForReadable = false
        if established, !failed, !closeNotifySent, let ssl {
            ERR_clear_error()
            if SSL_shutdown(ssl) < 0 {
                switch SSL_get_error(ssl, -1) {
                case SSL_ERROR_WANT_WRITE: return .wouldBlock
                case SSL_ERROR_WANT_READ:
                    writeWaitsForReadable = true
                    return .wouldBlock
                default: break
                }
            }
            ERR_clear_error()
            closeNotifySent = true
        }
        Glibc.shutdown(fd, CInt(SHUT_WR))
        return .done(0)
    }

    public func release() {
        if let ssl { SSL_free(ssl) }
        ssl = nil
        failed = true
    }
}
