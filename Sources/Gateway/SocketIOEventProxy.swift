import Protocol
import Runtime

extension Connection {
    /// Socket.IO events that are not room ops go to the backend proxy (`--proxy-url`) as an `rpc` whose
    /// `method` is the event name and whose `data` is the array of its arguments (docs/api.md, docs/socketio.md).
    /// The backend's `result` is the ack's one argument; a failure is an error ack
    /// (`[{"error":code,"message":…}]`). Without a proxy, or for an event with binary attachments (the
    /// backend speaks JSON), the answer is an error ack. Events without an ack id are still forwarded.
    func socketIOForward(namespace ns: String, event: String, arguments: [JSONFragment], attachments: [[UInt8]], ackID: Int?) {
        guard let proxy = loop.node.proxy else {
            sioMetrics.eventsRefused.add()
            socketIOAnswerError(
                namespace: ns, ackID: ackID, code: .unknownOp,
                message:
                    "no handler for event '\(event)': only \(loop.config.socketIO.joinEvent), \(loop.config.socketIO.leaveEvent) and \(loop.config.socketIO.publishEvent) are served (no --proxy-url)"
            )
            return
        }
        guard attachments.isEmpty else {
            sioMetrics.eventsRefused.add()
            socketIOAnswerError(
                namespace: ns, ackID: ackID, code: .badRequest,
                message: "binary events are not forwarded to the backend (it speaks JSON)")
            return
        }
        sioMetrics.eventsForwarded.add()
        var array: [UInt8] = [UInt8(ascii: "[")]
        for (i, argument) in arguments.enumerated() {
            if i > 0 { array.append(UInt8(ascii: ",")) }
            array.append(contentsOf: argument.bytes)
        }
        array.append(UInt8(ascii: "]"))
        proxy.proxyRPC(
            user: authState?.identity?.user, connection: String(id, radix: 16), method: event, data: JSONFragment(bytes: array),
            on: loop
        ) { outcome in
            guard let ackID, self.phase == .open, let sio = self.socketIO else { return }
            switch outcome {
            case .result(let result): self.performSocketIO(sio.session.answer(namespace: ns, ackID: ackID, arguments: [result]))
            case .failure(let code, let message): self.socketIOAnswerError(namespace: ns, ackID: ackID, code: ErrorCode(rawValue: code), message: message)
            }
        }
    }
}
