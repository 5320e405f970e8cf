// libFuzzer entry point for the Engine.IO / Socket.IO parsers and the session machine. Built by
// `FUZZ_TARGET=socketio Fuzz/run.sh` together with the Protocol sources.
// The first input byte picks a split point: the polling decoder must give the same result whole
// and cut in two; whatever decodes must encode back to bytes that decode to the same packet; the
// session machine must never emit anything after it closed, and what it sends, queued in a
// polling outbox, must come out as bodies that decode.

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzSocketIO(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    let cut = bytes.isEmpty ? 0 : Int(bytes[0]) * bytes.count / 256
    fuzzPolling(bytes, cut: cut)
    fuzzSocketIOPacket(bytes)
    fuzzSession(bytes)
    return 0
}

private func fuzzPolling(_ bytes: [UInt8], cut: Int) {
    let whole = try? EngineIOPayloadDecoder.decode(bytes, maxPayload: 4096, maxPackets: 64)
    var split = EngineIOPayloadDecoder(maxPayload: 4096, maxPackets: 64)
    var packets: [EngineIOPacket] = []
    var failed = false
    for piece in [Array(bytes[..<cut]), Array(bytes[cut...])] where !failed {
        piece.withUnsafeBytes { raw in
            do { try split.feed(raw) { packets.append($0) } } catch { failed = true }
        }
    }
    if !failed {
        do { try split.finish { packets.append($0) } } catch { failed = true }
    }
    precondition((whole == nil) == failed, "whole and split polling decodes disagree")
    if let whole {
        precondition(whole == packets, "whole and split polling packets differ")
        let again = try? EngineIOPayloadDecoder.decode(EngineIOPayloadDecoder.encode(whole), maxPayload: 1 << 20, maxPackets: 64)
        precondition(again == whole, "polling payload does not round-trip")
    }
}

private func fuzzSocketIOPacket(_ bytes: [UInt8]) {
    guard let packet = try? SocketIOPacket.decode(bytes) else { return }
    let again = try? SocketIOPacket.decode(packet.encoded())
    precondition(again == packet, "Socket.IO packet does not round-trip")
    if let payload = packet.payload {
        payload.bytes.withUnsafeBytes { precondition(SocketIOJSONScanner.scan($0) != nil) }
    }
    for argument in packet.arguments {
        argument.bytes.withUnsafeBytes { precondition(SocketIOJSONScanner.scan($0) != nil, "an argument is not one JSON value") }
    }
}

/// Frames are separated by 0x00; a frame starting with 0x01 is a binary frame, 0x02 a probe-socket packet.
private func fuzzSession(_ bytes: [UInt8]) {
    var session = SocketIOSession(
        sid: "s", transport: .polling,
        configuration: SocketIOSessionConfiguration(namespaces: ["/", "/chat"], pingInterval: 10, pingTimeout: 5, maxPayload: 2048))
    _ = session.start(now: 0)
    var now = 0
    var closed = false
    var outbox = EngineIOPollingOutbox(maxQueuedBytes: 512)
    for frame in bytes.split(separator: 0, omittingEmptySubsequences: false) {
        now += 3
        let frame = Array(frame)
        var actions = session.tick(now: now)
        switch frame.first {
        case 0x01: actions += session.receive(binaryFrame: Array(frame.dropFirst()), now: now)
        case 0x02:
            if let packet = try? frame.dropFirst().withUnsafeBytes({ try EngineIOPacket.decode(text: $0) }) {
                actions += session.receiveOnProbe(packet, now: now)
            }
        case 0x03: actions += session.receive(pollingBody: Array(frame.dropFirst()), now: now)
        default: actions += session.receive(text: frame, now: now)
        }
        if frame.count % 3 == 0 {
            if case .respond(let body) = outbox.poll() {
                precondition((try? EngineIOPayloadDecoder.decode(body, maxPayload: 1 << 20)) != nil, "a poll answer does not decode")
            }
        }
        for action in actions {
            precondition(!closed, "an action after close")
            switch action {
            case .send(let packet):
                if case .respond(let body) = outbox.enqueue(packet) {
                    precondition((try? EngineIOPayloadDecoder.decode(body, maxPayload: 1 << 20)) != nil, "a poll answer does not decode")
                }
                precondition(outbox.queuedBytes <= 512)
            case .close: closed = true
            case .authenticate(let ns, _, _):
                actions += session.connectResult(namespace: ns, frame.count % 2 == 0 ? .accepted(socketID: "x", pid: nil) : .rejected(message: "no", data: nil))
            case .forward(let ns, _, let args, _, let id?):
                _ = session.answer(namespace: ns, ackID: id, arguments: args)
            default: break
            }
        }
        if !closed, frame.count % 5 == 0 {
            _ = session.emit(namespace: "/", event: "e", arguments: [], expectingAck: true)
        }
        precondition(closed == session.isClosed)
    }
}
