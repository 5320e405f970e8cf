import Protocol
import Runtime

/// Room streams for permessage-deflate (``SharedDeflateStream``): at most `--deflate-room-contexts` rooms
/// on a loop hold one, chosen by use; the others compress each message alone, as without room streams.
extension GatewayLoop {
    /// The stream of `r`, made if the loop has room for one: under the cap, or by taking the stream of the
    /// room that used its own longest ago, if that was at least a second ago (so rooms beyond the cap do
    /// not take streams from each other on every message). nil: compress this message alone.
    func deflateStream(for r: LoopRoom) -> SharedDeflateStream? {
        let now = loop.now
        if let stream = r.deflateStream {
            r.deflateStreamUsedAt = now
            return stream
        }
        let settings = config.deflate
        guard settings.sharedContexts > 0 else { return nil }
        if deflateStreamRooms.count >= settings.sharedContexts {
            guard let oldest = deflateStreamRooms.values.min(by: { $0.deflateStreamUsedAt < $1.deflateStreamUsedAt }),
                now &- oldest.deflateStreamUsedAt >= 1000
            else { return nil }
            dropDeflateStream(oldest)
        }
        let stream = SharedDeflateStream(windowBits: settings.sharedWindowBits)
        r.deflateStream = stream
        r.deflateStreamUsedAt = now
        deflateStreamRooms[ObjectIdentifier(r)] = r
        metrics.deflateRoomContexts.add()
        metrics.deflateRoomContextBytes.add(stream.zlibBytes)
        return stream
    }

    /// Frees the stream of `r` (the room emptied, or another room takes its place).
    func dropDeflateStream(_ r: LoopRoom) {
        guard let stream = r.deflateStream else { return }
        metrics.deflateRoomContexts.add(-1)
        metrics.deflateRoomContextBytes.add(-stream.zlibBytes)
        r.deflateStream = nil
        deflateStreamRooms[ObjectIdentifier(r)] = nil
    }
}

/// What each permessage-deflate member of a room gets for one room message (the fan-out's choice): the
/// room stream's frame when the member's inflater is in step with the stream, else a copy compressed
/// alone, made at most once per window size and shared.
struct DeflateFanOut {
    let opcode: Opcode
    let payload: UnsafeRawBufferPointer
    let plain: Bytes
    /// The room stream's message (nil: no stream, or compression did not shrink it).
    let stream: SharedDeflateStream?
    let shared: SharedDeflateStream.Message?
    let sharedFrame: Bytes?
    private var alone: [UInt8: Bytes] = [:]
    /// Members that should have been in step and were not (the stream resets for them).
    private(set) var stragglers = 0

    init(loop: GatewayLoop, room: LoopRoom, frame: Bytes, payload: UnsafeRawBufferPointer) {
        opcode = frame.frameOpcode
        self.payload = payload
        plain = frame
        stream = room.sharedDeflateMembers > 0 ? loop.deflateStream(for: room) : nil
        shared = stream?.next(opcode: opcode, payload: payload)
        sharedFrame = shared.map { Bytes($0.frame) }
        if shared?.isResetPoint == true { loop.metrics.deflateContextResets.add() }
    }

    /// The frame for member `m`, and the token `m` holds once it is queued (nil: leave its token as the
    /// queue sets it). `held`: the frame waits in the resume seam, so other frames may pass it.
    mutating func frame(for m: Connection, on loop: GatewayLoop, held: Bool) -> (Bytes, token: UInt64?) {
        let bits = m.deflateWindowBits
        if let shared, let sharedFrame {
            if m.deflateShared && !held && shared.canInflate(after: m.deflateToken) {
                loop.metrics.deflateSharedDeliveries.add()
                return (sharedFrame, shared.token)
            }
            // A reset point refers to nothing earlier, so any peer with a window this large inflates it.
            // (No back-reference reaches further than the stream's window, nor than the payload is long.)
            if shared.isResetPoint && (Int(bits) >= loop.config.deflate.sharedWindowBits || payload.count <= 1 << Int(bits)) {
                loop.metrics.deflateAloneDeliveries.add()
                return (sharedFrame, nil)
            }
        }
        if m.deflateShared && !held { stragglers += 1 }
        let made: Bytes
        if let cached = alone[bits] {
            made = cached
        } else {
            made = loop.compressedFrame(opcode, payload, windowBits: Int(bits)) ?? plain
            alone[bits] = made
        }
        // Counted only when compressed: a message that does not shrink goes plain and is no compressed delivery.
        if made !== plain { loop.metrics.deflateAloneDeliveries.add() }
        return (made, nil)
    }

    /// After the fan-out: a member that missed the stream makes it reset soon, so the member can join it.
    func finish() {
        if stragglers > 0 { stream?.noteStraggler() }
    }
}
