import Runtime
import TLS

/// How a `rediss://` bus checks the server and proves itself (`--redis-tls-*` flags).
///
/// Peer verification is always on: the server's chain must lead to `caFile` (or the system store), and with
/// `verifyServerName` its certificate must cover `serverName` (default: the URL's host; an IP address is
/// matched against the certificate's IP entries). A client certificate is sent when the server asks
/// (`tls-auth-clients yes`).
public struct RedisTLSSettings: Sendable, Equatable {
    /// PEM CA file (`--redis-tls-ca`); nil trusts the system store.
    public var caFile: String?
    /// PEM client certificate chain and key (`--redis-tls-cert`, `--redis-tls-key`), or nil.
    public var certificate: TLSCertificatePair?
    /// The name checked against the server's certificate and sent as SNI (`--redis-tls-server-name`); nil uses
    /// the host of each connection's address (the URL's host; in cluster mode, the node's announced address).
    public var serverName: String?
    /// False skips the name check (`--redis-tls-verify-name no`): the chain is still verified.
    public var verifyServerName: Bool

    public init(caFile: String? = nil, certificate: TLSCertificatePair? = nil, serverName: String? = nil, verifyServerName: Bool = true) {
        self.caFile = caFile
        self.certificate = certificate
        self.serverName = serverName
        self.verifyServerName = verifyServerName
    }

    /// Loads the files into a client context. Errors: `TLSConfigurationError` (one line naming the file).
    public func makeContext() throws(TLSConfigurationError) -> TLSClientContext {
        try TLSClientContext(caFile: caFile, certificate: certificate)
    }
}
