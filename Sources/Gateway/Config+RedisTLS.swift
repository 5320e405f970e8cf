import ClusterBus
import TLS

extension Config {
    /// The `rediss://` flags, appended to the flag table (`--help` order). They apply only when `--redis-url`
    /// is `rediss://`; peer verification is always on.
    static let redisTLSOptions: [Option] = [
        Option(
            name: "redis-tls-ca", kind: .string,
            help: "rediss:// and rediss-cluster://: PEM file of the CAs that sign the Redis server's certificate (unset = the system store)",
            apply: { c, v in c.redisTLS.caFile = v.isEmpty ? nil : v }, current: { $0.redisTLS.caFile ?? "" }),
        Option(
            name: "redis-tls-cert", kind: .string,
            help: "rediss:// and rediss-cluster://: PEM client certificate chain for servers that require one (with --redis-tls-key)",
            apply: { c, v in c.redisTLSCertificate = v.isEmpty ? nil : v }, current: { $0.redisTLSCertificate ?? "" }),
        Option(
            name: "redis-tls-key", kind: .string, help: "rediss:// and rediss-cluster://: PEM private key of --redis-tls-cert",
            apply: { c, v in c.redisTLSKey = v.isEmpty ? nil : v }, current: { $0.redisTLSKey ?? "" }),
        Option(
            name: "redis-tls-server-name", kind: .string,
            help:
                "rediss:// and rediss-cluster://: name the server's certificate must cover, also sent as SNI (unset = the URL's host; in cluster mode each node's announced hostname, else its address)",
            apply: { c, v in c.redisTLS.serverName = v.isEmpty ? nil : v }, current: { $0.redisTLS.serverName ?? "" }),
        Option(
            name: "redis-tls-verify-name", kind: .flag,
            help: "rediss:// and rediss-cluster://: yes/no: check the certificate's name (no: the chain is still verified)",
            apply: { c, v throws(Invalid) in c.redisTLS.verifyServerName = try yesNo(v, "redis-tls-verify-name") },
            current: { $0.redisTLS.verifyServerName ? "yes" : "no" })
    ]

    /// Pairs `--redis-tls-cert` with `--redis-tls-key` (both or neither). Errors: `Invalid` naming the missing one.
    static func finalizeRedisTLS(_ config: inout Config) throws(Invalid) {
        switch (config.redisTLSCertificate, config.redisTLSKey) {
        case (let cert?, let key?): config.redisTLS.certificate = TLSCertificatePair(certificatePath: cert, keyPath: key)
        case (nil, nil): config.redisTLS.certificate = nil
        case (_?, nil): throw Invalid(description: "--redis-tls-cert needs --redis-tls-key")
        case (nil, _?): throw Invalid(description: "--redis-tls-key needs --redis-tls-cert")
        }
    }
}
