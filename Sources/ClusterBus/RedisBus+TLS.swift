import Runtime
import TLS

/// `rediss://`: both connections speak TLS through the gateway's OpenSSL transport (client side).
extension RedisBus {
    /// Loads the CA and client certificate once; every connection attempt then wraps its socket in a
    /// `TLSTransport`. A context that cannot be built (unreadable CA file, key not matching) fails every
    /// attempt with that one-line reason (logged by the attempt log, `/ready` says down) rather than
    /// falling back to plain TCP.
    func configureTLS() {
        let settings = configuration.tls
        let serverName = settings.serverName ?? configuration.endpoint.host
        let metrics = TLSMetrics()
        let factory: (CInt) -> (any Transport)?
        do {
            let context = try settings.makeContext()
            factory = { fd in TLSTransport(client: context, serverName: serverName, verifyName: settings.verifyServerName, fd: fd, metrics: metrics) }
        } catch {
            let reason = error.description
            logger(.error, "redis TLS settings cannot be used", [("error", .string(reason))])
            factory = { _ in nil }
        }
        commands.makeTransport = factory
        subscriber.makeTransport = factory
    }
}
