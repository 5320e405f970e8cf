import CLinux
import COpenSSL
import Glibc
import Runtime

/// TLS on one accepted, non-blocking socket: an OpenSSL `SSL*` in server (accept) state reading and writing
/// the fd directly (socket BIO, so no copy of ciphertext on our side), driven by the socket's readiness.
///
/// - The handshake runs inside `read` (the socket reads when `EPOLLIN` fires); its deadline is the
///   connection's handshake deadline, armed at accept, so a stalled client is closed like a slow HTTP one.
/// - A first byte that is not `0x16` (a TLS handshake record) is plain text sent to the TLS port: it gets
///   `HTTP/1.1 400` in clear with a one-line hint, then FIN, and is counted (never a TLS alert a browser
///   shows as garbage, never an upgrade served unencrypted). golang/go#23689 did the same.
/// - `write` calls `SSL_write` once per queued buffer, so a fan-out frame shared by many connections is
///   encrypted once per connection straight from the shared bytes (`SSL_MODE_ENABLE_PARTIAL_WRITE`: a
///   large buffer leaves record by record and a full kernel buffer reports what left).
/// - `WANT_READ` / `WANT_WRITE` map to `.wouldBlock`, with `readWaitsForWritable` / `writeWaitsForReadable`
///   telling the socket which readiness it waits for when the direction is crossed.
/// - `shutdownWrite` sends `close_notify`, then TCP FIN (RFC 8446 §6.1; RFC 6455 §7.1.1 asks for a clean
///   TLS close). `release` frees the `SSL*` before the socket closes the fd and writes nothing, so no TLS
///   byte can reach a reused descriptor (freeswitch/sofia-sip#131).
///
/// Loop-confined like its socket. Idle cost: the `SSL*` with its record buffers released
/// (`SSL_MODE_RELEASE_BUFFERS`) plus this object.
public final class TLSTransport: Transport {
    private enum State: UInt8 {
        /// Nothing read yet: the first byte decides between TLS and the plain-HTTP answer.
        case sniffing
        case handshaking
        case established
        /// Plain HTTP was answered with 400 and FIN: input is read and discarded until EOF.
        case plaintextRejected
        /// The stream is unusable (fatal TLS error); every call fails.
        case failed
    }

    private var ssl: OpaquePointer?
    /// Held until the handshake ends: the SNI callback points at it.
    private var context: TLSContext?
    private unowned(unsafe) let metrics: TLSMetrics
    private var state = State.sniffing
    private var handshakeStartedAt: UInt64 = 0
    /// A close or error met after data in the same `read`: returned by the next `read`.
    private var pendingEnd: TransportResult?
    private var closeNotifySent = false
    public private(set) var readWaitsForWritable = false
    public private(set) var writeWaitsForReadable = false
    public private(set) var holdsUnreportedWrite = false
    /// Client side (`init(client:…)`): the client speaks first, so a write may drive the handshake.
    private var isClient = false
    /// A client whose socket did not exist at `init`: the `SSL*` is made with the fd on first use.
    private var deferredClient: DeferredClient?
    /// Why the handshake failed, in one line (a certificate verification error names its reason), or nil.
    public private(set) var failureDescription: String?

    /// - Parameters: `context`: the listener's current certificates; `fd`: the accepted socket;
    ///   `metrics`: the listener's counters on this loop (must outlive the transport, as a loop's do).
    public init(context: TLSContext, fd: CInt, metrics: TLSMetrics) {
        self.ssl = context.makeSSL(fd: fd)
        self.context = context
        self.metrics = metrics
        if ssl == nil { state = .failed }
    }

    /// Client side, for outgoing connections (`rediss://`): an `SSL*` from `client` in connect state on the
    /// socket `fd` (connect may still be in progress). The handshake starts with the first write and ends in
    /// reads and writes as readiness comes; `serverName` and `verifyName` as in `TLSClientContext.makeSSL`.
    public init(client: TLSClientContext, serverName: String, verifyName: Bool, fd: CInt, metrics: TLSMetrics) {
        self.ssl = client.makeSSL(fd: fd, serverName: serverName, verifyName: verifyName)
        self.context = nil
        self.metrics = metrics
        self.isClient = true
        self.state = ssl == nil ? .failed : .handshaking
        self.handshakeStartedAt = monotonicNanoseconds()
        if ssl == nil { failureDescription = "cannot set up TLS for '\(serverName)'" }
    }

    /// Client side for a socket made later (`ClientConnection` creates its transport before its fd): the
    /// `SSL*` is made on the first read or write, then as `init(client:serverName:verifyName:fd:metrics:)`.
    public init(client: TLSClientContext, serverName: String, verifyName: Bool, metrics: TLSMetrics) {
        self.ssl = nil
        self.context = nil
        self.metrics = metrics
        self.isClient = true
        self.state = .handshaking
        self.handshakeStartedAt = monotonicNanoseconds()
        self.deferredClient = DeferredClient(context: client, serverName: serverName, verifyName: verifyName)
    }

    private func attachDeferredClient(fd: CInt) {
        guard let d = deferredClient, fd >= 0 else { return }
        deferredClient = nil
        ssl = d.context.makeSSL(fd: fd, serverName: d.serverName, verifyName: d.verifyName)
        if ssl == nil {
            state = .failed
            failureDescription = "cannot set up TLS for '\(d.serverName)'"
        }
    }

    /// The negotiated version ("1.2", "1.3") once the handshake is done, else nil.
    public var version: String? {
        guard state == .established, let ssl else { return nil }
        return SSL_version(ssl) == TLS1_3_VERSION ? "1.3" : "1.2"
    }

    /// The ALPN protocol agreed on (`http/1.1`), or nil.
    public var negotiatedALPN: String? {
        guard let ssl else { return nil }
        var data: UnsafePointer<UInt8>? = nil
        var length: UInt32 = 0
        SSL_get0_alpn_selected(ssl, &data, &length)
        guard let data, length > 0 else { return nil }
        return String(decoding: UnsafeBufferPointer(start: data, count: Int(length)), as: UTF8.self)
    }

    // MARK: - Read

    public func read(fd: CInt, into buffer: UnsafeMutableRawBufferPointer) -> TransportResult {
        readWaitsForWritable = false
        if deferredClient != nil { attachDeferredClient(fd: fd) }
        if let end = pendingEnd {
            pendingEnd = nil
            return end
        }
        switch state {
        case .sniffing:
            switch sniff(fd: fd) {
            case .handshake: break
            case .plaintext: return rejectPlaintext(fd: fd, buffer: buffer)
            case .result(let r): return r
            }
            state = .handshaking
            handshakeStartedAt = monotonicNanoseconds()
            return handshake(fd: fd, buffer: buffer)
        case .handshaking:
            return handshake(fd: fd, buffer: buffer)
        case .established:
            return readRecords(into: buffer)
        case .plaintextRejected:
            return discard(fd: fd, buffer: buffer)
        case .failed:
            return .failed(EPROTO)
        }
    }

    private enum Sniff {
        case handshake, plaintext
        case result(TransportResult)
    }

    /// Peeks at the first byte (`MSG_PEEK`: it stays for OpenSSL).
    private func sniff(fd: CInt) -> Sniff {
        var byte: UInt8 = 0
        while true {
            let n = recv(fd, &byte, 1, CInt(MSG_PEEK))
            if n == 1 { return byte == 0x16 ? .handshake : .plaintext }
            if n == 0 {
                metrics.failures(.eof).add()
                state = .failed
                return .result(.eof)
            }
            let e = errno
            if e == EINTR { continue }
            if e == EAGAIN || e == EWOULDBLOCK { return .result(.wouldBlock) }
            metrics.failures(.reset).add()
            state = .failed
            return .result(.failed(e))
        }
    }

    /// The answer to plain text on the TLS port: small enough for an empty send buffer, written in clear.
    static let plaintextAnswer: [UInt8] = {
        let body = "plain HTTP sent to the TLS port, use wss:// or https://\n"
        return Array(
            ("HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: \(body.utf8.count)\r\n"
                + "Connection: close\r\n\r\n" + body).utf8)
    }()

    private func rejectPlaintext(fd: CInt, buffer: UnsafeMutableRawBufferPointer) -> TransportResult {
        metrics.plaintextRejections.add()
        state = .plaintextRejected
        // Read what arrived first: closing with unread input would send RST, which can destroy our answer
        // in the client's receive queue. Then the answer and FIN; the socket closes on the client's EOF or
        // at the handshake deadline.
        let drained = discard(fd: fd, buffer: buffer)
        Self.plaintextAnswer.withUnsafeBytes { p in _ = Glibc.write(fd, p.baseAddress!, p.count) }
        Glibc.shutdown(fd, CInt(SHUT_WR))
        return drained
    }

    /// Reads and drops input until the kernel has none (`.wouldBlock`) or the client closed (`.eof`).
    private func discard(fd: CInt, buffer: UnsafeMutableRawBufferPointer) -> TransportResult {
        while true {
            let n = Glibc.read(fd, buffer.baseAddress!, buffer.count)
            if n > 0 { continue }
            if n == 0 { return .eof }
            let e = errno
            if e == EINTR { continue }
            if e == EAGAIN || e == EWOULDBLOCK { return .wouldBlock }
            return .failed(e)
        }
    }

    private func handshake(fd: CInt, buffer: UnsafeMutableRawBufferPointer) -> TransportResult {
        guard let ssl else { return .failed(EPROTO) }
        ERR_clear_error()
        let r = SSL_do_handshake(ssl)
        if r == 1 {
            state = .established
            context = nil
            metrics.completed[SSL_version(ssl) == TLS1_3_VERSION ? 1 : 0].add()
            metrics.handshakeDuration.observe(nanoseconds: Int(monotonicNanoseconds() &- handshakeStartedAt))
            // Application data may have arrived with the client's Finished (e.g. the HTTP upgrade request).
            return readRecords(into: buffer)
        }
        let err = SSL_get_error(ssl, r)
        switch err {
        case SSL_ERROR_WANT_READ:
            return .wouldBlock
        case SSL_ERROR_WANT_WRITE:
            readWaitsForWritable = true
            return .wouldBlock
        default:
            return handshakeFailed(err)
        }
    }

    private func handshakeFailed(_ err: CInt) -> TransportResult {
        let (result, outcome) = classifyFailure(err)
        if isClient, let ssl {
            // Client side only (the server's metrics label is all it keeps): the reason for the owner's log line.
            if SSL_get_verify_result(ssl) != X509_V_OK {
                failureDescription = "certificate verification failed: " + String(cString: X509_verify_cert_error_string(SSL_get_verify_result(ssl)))
            } else {
                failureDescription = "TLS handshake failed: " + (ERR_peek_error() == 0 ? "\(result)" : TLSContext.lastError())
            }
        }
        metrics.failures(result).add()
        state = .failed
        ERR_clear_error()
        return outcome
    }

    /// Client side: one handshake step from the write path (the ClientHello leaves here). nil once established.
    private func driveClientHandshake() -> TransportResult? {
        guard let ssl else { return .failed(EPIPE) }
        ERR_clear_error()
        let r = SSL_do_handshake(ssl)
        if r == 1 {
            state = .established
            metrics.completed[SSL_version(ssl) == TLS1_3_VERSION ? 1 : 0].add()
            metrics.handshakeDuration.observe(nanoseconds: Int(monotonicNanoseconds() &- handshakeStartedAt))
            return nil
        }
        let err = SSL_get_error(ssl, r)
        switch err {
        case SSL_ERROR_WANT_READ:
            writeWaitsForReadable = true
            return .wouldBlock
        case SSL_ERROR_WANT_WRITE:
            return .wouldBlock
        default:
            let outcome = handshakeFailed(err)
            if case .failed = outcome { return outcome }
            return .failed(EPIPE)
        }
    }

    /// Maps a failed handshake to its metric label and the socket's result (EOF stays EOF).
    private func classifyFailure(_ err: CInt) -> (TLSHandshakeResult, TransportResult) {
        let e = ERR_peek_error()
        let reason = e == 0 ? 0 : cshim_ERR_GET_REASON(e)
        if err == SSL_ERROR_SYSCALL && e == 0 {
            let no = errno
            return no == 0 ? (.eof, .eof) : (.reset, .failed(no))
        }
        if err == SSL_ERROR_ZERO_RETURN || reason == cshim_SSL_R_UNEXPECTED_EOF_WHILE_READING { return (.eof, .eof) }
        switch reason {
        case cshim_SSL_R_WRONG_VERSION_NUMBER, cshim_SSL_R_UNSUPPORTED_PROTOCOL, cshim_SSL_R_VERSION_TOO_LOW, cshim_SSL_R_NO_PROTOCOLS_AVAILABLE:
            return (.protocolVersion, .failed(EPROTO))
        case cshim_SSL_R_NO_SHARED_CIPHER:
            return (.noSharedCipher, .failed(EPROTO))
        case cshim_SSL_AD_REASON_OFFSET...(cshim_SSL_AD_REASON_OFFSET + 255):
            return (.peerAlert, .failed(EPROTO))
        default:
            return (cshim_ERR_GET_LIB(e) == ERR_LIB_SSL ? .malformed : .error, .failed(EPROTO))
        }
    }

    /// Decrypts records into `buffer` until it is full or the kernel has nothing more (`SSL_read` returns at
    /// most one record per call).
    private func readRecords(into buffer: UnsafeMutableRawBufferPointer) -> TransportResult {
        guard let ssl else { return .failed(EPROTO) }
        var total = 0
        while total < buffer.count {
            var got = 0
            ERR_clear_error()
            if SSL_read_ex(ssl, buffer.baseAddress! + total, buffer.count - total, &got) == 1 {
                total += got
                continue
            }
            let err = SSL_get_error(ssl, 0)
            let end: TransportResult
            switch err {
            case SSL_ERROR_WANT_READ:
                return total > 0 ? .done(total) : .wouldBlock
            case SSL_ERROR_WANT_WRITE:
                // A KeyUpdate answer or alert that did not fit the send buffer.
                if total > 0 { return .done(total) }
                readWaitsForWritable = true
                return .wouldBlock
            case SSL_ERROR_ZERO_RETURN:
                end = .eof  // close_notify
            case SSL_ERROR_SYSCALL:
                let no = errno
                end = ERR_peek_error() == 0 && no != 0 ? .failed(no) : .eof
            default:
                // A client that closes without close_notify is common and harmless for WebSocket (frames are
                // self-delimiting): treat it as EOF. Anything else (bad MAC, garbage record) is fatal.
                end = cshim_ERR_GET_REASON(ERR_peek_error()) == cshim_SSL_R_UNEXPECTED_EOF_WHILE_READING ? .eof : .failed(EPROTO)
                if case .failed = end { state = .failed }
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
        // Without read-ahead, OpenSSL reads one record at a time: bytes it holds are decrypted ones
        // (`SSL_pending`); records still in the kernel raise `EPOLLIN` as usual.
        if pendingEnd != nil { return true }
        guard state == .established, let ssl else { return false }
        return SSL_pending(ssl) > 0
    }

    // MARK: - Write

    public func write(fd: CInt, _ iov: UnsafeMutablePointer<iovec>, count: Int) -> TransportResult {
        writeWaitsForReadable = false
        if deferredClient != nil { attachDeferredClient(fd: fd) }
        switch state {
        case .handshaking where isClient:
            if let pending = driveClientHandshake() { return pending }
        case .sniffing, .handshaking:
            // Nothing can be encrypted before the handshake ends (e.g. a drain's 503 mid-handshake): the read
            // path finishes it, then the socket flushes again.
            writeWaitsForReadable = true
            return .wouldBlock
        case .plaintextRejected, .failed:
            return .failed(EPIPE)
        case .established:
            break
        }
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
                    // The record is encrypted and waits inside OpenSSL: the retry must offer these same bytes.
                    holdsUnreportedWrite = true
                    if err == SSL_ERROR_WANT_READ { writeWaitsForReadable = true }
                    return total > 0 ? .done(total) : .wouldBlock
                case SSL_ERROR_SYSCALL:
                    let no = errno
                    ERR_clear_error()
                    state = .failed
                    return .failed(no == 0 ? EPIPE : no)
                default:
                    ERR_clear_error()
                    state = .failed
                    return .failed(EPROTO)
                }
            }
        }
        return .done(total)
    }

    public func shutdownWrite(fd: CInt) -> TransportResult {
        writeWaitsForReadable = false
        if state == .established, !closeNotifySent, let ssl {
            ERR_clear_error()
            let r = SSL_shutdown(ssl)
            if r < 0 {
                switch SSL_get_error(ssl, r) {
                case SSL_ERROR_WANT_WRITE:
                    return .wouldBlock
                case SSL_ERROR_WANT_READ:
                    writeWaitsForReadable = true
                    return .wouldBlock
                default:
                    break  // the stream is broken: FIN is all that is left to send
                }
            }
            ERR_clear_error()
            closeNotifySent = true
        }
        Glibc.shutdown(fd, CInt(SHUT_WR))
        return .done(0)
    }

    public func release() {
        if state == .sniffing || state == .handshaking { metrics.failures(.incomplete).add() }
        if let ssl {
            // SSL_free writes nothing (no alert): the fd may be closed and reused right after.
            SSL_free(ssl)
            self.ssl = nil
        }
        context = nil
        state = .failed
    }
}

/// What a deferred client transport needs to make its `SSL*` once its socket exists.
private final class DeferredClient {
    let context: TLSClientContext
    let serverName: String
    let verifyName: Bool
    init(context: TLSClientContext, serverName: String, verifyName: Bool) {
        self.context = context
        self.serverName = serverName
        self.verifyName = verifyName
    }
}
