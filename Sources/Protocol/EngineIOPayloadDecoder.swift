/// Streaming decoder for an Engine.IO v4 HTTP long-polling body: packets in text form joined by
/// the record separator 0x1E, binary messages as `b` + base64 (socketio/engine.io-protocol,
/// revision 4, "HTTP long-polling" packet encoding). E.g. `4hello\u{1e}2probe\u{1e}bAQIDBA==`.
///
/// Feed the body in any split; each packet is delivered as soon as its separator arrives and
/// the last one by ``finish(_:)``. Memory: one packet, at most `maxPayload` bytes. The whole body
/// is bounded by `maxPayload` too (the reference server's `maxHttpBufferSize` plays that role)
/// and by `maxPackets`. A bad packet throws ``EngineIOError/inPayload(index:_:)`` wrapping its
/// error; packets before it have already been delivered, so a caller that wants the body
/// applied all-or-nothing collects them and acts only after `finish` (``decode(_:maxPayload:maxPackets:)``).
public struct EngineIOPayloadDecoder: Sendable {
    /// The record separator between packets.
    public static let separator: UInt8 = 0x1E

    /// Bytes allowed for the whole body, separators included.
    public let maxPayload: Int
    /// Packets allowed in one body.
    public let maxPackets: Int

    private var current: [UInt8] = []
    private var total = 0
    private var index = 0

    /// A decoder for one body. Defaults: 1,000,000 bytes (the reference default) and 1,000 packets.
    public init(maxPayload: Int = 1_000_000, maxPackets: Int = 1_000) {
        self.maxPayload = maxPayload
        self.maxPackets = maxPackets
    }

    /// Feeds the next bytes of the body, calling `onPacket` for each completed packet.
    public mutating func feed(_ bytes: UnsafeRawBufferPointer, _ onPacket: (EngineIOPacket) -> Void) throws(EngineIOError) {
        total += bytes.count
        guard total <= maxPayload else { throw .payloadTooLarge(limit: maxPayload) }
        var start = 0
        while let sep = bytes[start...].firstIndex(of: Self.separator) {
            current.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[start..<sep]))
            try emit(onPacket)
            start = sep + 1
        }
        current.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[start...]))
    }

    /// Ends the body: the bytes after the last separator are its last packet (an empty body is
    /// one empty packet, hence `emptyPacket`).
    public mutating func finish(_ onPacket: (EngineIOPacket) -> Void) throws(EngineIOError) {
        try emit(onPacket)
    }

    private mutating func emit(_ onPacket: (EngineIOPacket) -> Void) throws(EngineIOError) {
        guard index < maxPackets else { throw .tooManyPackets(limit: maxPackets) }
        let packet: EngineIOPacket
        do throws(EngineIOError) {
            packet = try withBytes(of: current) { raw throws(EngineIOError) in
                try EngineIOPacket.decode(text: raw, base64Allowed: true, maxPayload: maxPayload)
            }
        } catch {
            throw .inPayload(index: index, error)
        }
        current.removeAll(keepingCapacity: true)
        index += 1
        onPacket(packet)
    }

    /// Decodes a complete body, all or nothing: the packets, or the first error.
    public static func decode(_ body: [UInt8], maxPayload: Int = 1_000_000, maxPackets: Int = 1_000) throws(EngineIOError) -> [EngineIOPacket] {
        var decoder = EngineIOPayloadDecoder(maxPayload: maxPayload, maxPackets: maxPackets)
        var packets: [EngineIOPacket] = []
        try withBytes(of: body) { raw throws(EngineIOError) in try decoder.feed(raw) { packets.append($0) } }
        try decoder.finish { packets.append($0) }
        return packets
    }

    /// The body of a poll answer: the packets' text forms joined by 0x1E (binary as `b` + base64).
    public static func encode(_ packets: [EngineIOPacket]) -> [UInt8] {
        var out: [UInt8] = []
        for (i, packet) in packets.enumerated() {
            if i > 0 { out.append(separator) }
            packet.appendText(to: &out)
        }
        return out
    }
}
