import Runtime

/// Why a TLS handshake did not finish: the `result` label of `switchboard_tls_handshakes_total` (a fixed
/// set, so the label's cardinality is bounded whatever clients send).
public enum TLSHandshakeResult: String, Sendable, CaseIterable {
    /// Finished (the `version` label then says 1.2 or 1.3).
    case ok
    /// The client closed (FIN or close_notify) before the handshake ended.
    case eof
    /// The client reset the connection (`ECONNRESET`) or another socket error.
    case reset
    /// No common protocol version (e.g. a TLS 1.0 client, or 1.2 under `--tls-min-version 1.3`).
    case protocolVersion = "protocol_version"
    /// No common cipher suite or group.
    case noSharedCipher = "no_shared_cipher"
    /// The client sent a fatal alert (it rejected our certificate, for instance).
    case peerAlert = "peer_alert"
    /// Bytes that are not a valid TLS handshake (garbage records, a truncated or oversized record).
    case malformed
    /// Still unfinished when the connection was closed (the handshake deadline, a drain).
    case incomplete
    /// Anything else OpenSSL refused.
    case error
}

/// TLS counters of one listener on one event loop (single writer: that loop; the `/metrics` scrape sums
/// them over loops).
public final class TLSMetrics: Sendable {
    /// Completed handshakes by version: index 0 is TLS 1.2, 1 is TLS 1.3.
    public let completed: [Counter] = [Counter(), Counter()]
    /// Failed handshakes by `TLSHandshakeResult` (index = position in `allCases`; `.ok` unused).
    public let failed: [Counter] = TLSHandshakeResult.allCases.map { _ in Counter() }
    /// Connections whose first byte was not a TLS handshake record (plain HTTP on the TLS port), answered 400.
    public let plaintextRejections = Counter()
    /// First ClientHello byte to the end of the handshake, for handshakes that completed.
    public let handshakeDuration = LatencyHistogram(bounds: TLSMetrics.handshakeBounds)

    /// Bounds in seconds: 250 µs … 5 s (a handshake is about 1 ms of CPU plus the client's round trip).
    public static let handshakeBounds: [Double] = [0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5]

    public init() {}

    /// The counter of failures with `result`.
    public func failures(_ result: TLSHandshakeResult) -> Counter {
        failed[TLSHandshakeResult.allCases.firstIndex(of: result)!]
    }
}
