import Protocol
import Runtime

/// A Socket.IO event that is not a room op, for the backend event proxy.
struct SocketIOForwardedEvent: Sendable {
    /// The namespace it came through, e.g. `/` or `/chat`.
    var namespace: String
    /// The event name (`socket.emit(name, …)`).
    var event: String
    /// The arguments after the name, each one JSON value as sent.
    var arguments: [JSONFragment]
    /// Binary attachments (BINARY_EVENT), in placeholder order.
    var attachments: [[UInt8]]
    /// The authenticated user, nil without authentication.
    var user: String?
    /// Whether the client waits for an answer (it sent an ack id).
    var wantsAnswer: Bool
}

/// The seam of the backend event proxy (built on its own branch, issue 14): events that are not room ops
/// go to it when the node has one (``GatewayNode/socketIOEventProxy``); without one they get an error ack.
protocol SocketIOEventProxy: AnyObject, Sendable {
    /// Hands `event` to the backend; `completion` (any thread, once) gives the ack's arguments, or an error
    /// code and message for an error ack. For an event without an ack id (`wantsAnswer` false) the result is
    /// dropped, so the proxy need not call back.
    func forward(_ event: SocketIOForwardedEvent, completion: @escaping @Sendable (Result<[JSONFragment], SocketIOProxyError>) -> Void)
}

/// Why the backend event proxy could not answer an event: sent to the client as an error ack.
struct SocketIOProxyError: Error, Sendable {
    /// The room protocol's error code, e.g. `unavailable`.
    var code: ErrorCode
    /// Safe to show the client.
    var message: String
}

extension Connection {
    /// Other events: to the backend event proxy when the node has one, else an error ack (when one is wanted).
    func socketIOForward(namespace ns: String, event: String, arguments: [JSONFragment], attachments: [[UInt8]], ackID: Int?) {
        guard let proxy = loop.node.socketIOEventProxy else {
            sioMetrics.eventsRefused.add()
            socketIOAnswerError(namespace: ns, ackID: ackID, code: .unknownOp,
                                message: "no handler for event '\(event)': only \(loop.config.socketIO.joinEvent), \(loop.config.socketIO.leaveEvent) and \(loop.config.socketIO.publishEvent) are served")
            return
        }
        sioMetrics.eventsForwarded.add()
        let loopRef = loop
        let forwarded = SocketIOForwardedEvent(namespace: ns, event: event, arguments: arguments, attachments: attachments,
                                               user: authState?.identity?.user, wantsAnswer: ackID != nil)
        proxy.forward(forwarded) { result in
            loopRef.onLoop {
                guard let ackID, self.phase == .open, let sio = self.socketIO else { return }
                switch result {
                case .success(let args): self.performSocketIO(sio.session.answer(namespace: ns, ackID: ackID, arguments: args))
                case .failure(let e): self.socketIOAnswerError(namespace: ns, ackID: ackID, code: e.code, message: e.message)
                }
            }
        }
    }
}
