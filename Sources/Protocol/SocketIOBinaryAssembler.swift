/// A decoded Socket.IO packet together with its binary attachments, in order.
public struct SocketIOMessage: Equatable, Sendable {
    /// The packet (for BINARY_EVENT / BINARY_ACK its arguments hold the placeholders).
    public var packet: SocketIOPacket
    /// The attachments; `attachments[n]` replaces `{"_placeholder":true,"num":n}`. Empty for text-only packets.
    public var attachments: [[UInt8]]

    /// A message with the fields given.
    public init(packet: SocketIOPacket, attachments: [[UInt8]] = []) {
        self.packet = packet
        self.attachments = attachments
    }
}

/// Reassembles BINARY_EVENT / BINARY_ACK packets: the text header announces N attachments
/// (`51-["up",{"_placeholder":true,"num":0}]`), and the next N Engine.IO binary messages are
/// they (socketio/socket.io-protocol, version 5, "Binary packets").
///
/// Feed every Engine.IO message of one session in order. Memory: the header plus at most
/// `maxAttachments` attachments, each bounded by Engine.IO's `maxPayload`.
/// Errors: a text packet while attachments are due → `expectedAttachment(remaining:)`; a binary
/// message with none due → `unexpectedAttachment`; plus every ``SocketIOPacket/decode(_:limits:)`` error.
public struct SocketIOBinaryAssembler: Sendable {
    /// The decoding limits applied to text packets.
    public let limits: SocketIOLimits
    private var pending: SocketIOPacket?
    private var attachments: [[UInt8]] = []

    /// An assembler decoding with `limits`.
    public init(limits: SocketIOLimits = SocketIOLimits()) { self.limits = limits }

    /// Attachments still due for the pending binary packet (0 when none is pending).
    public var remainingAttachments: Int { pending.map { $0.attachments - attachments.count } ?? 0 }

    /// A text message: a complete message, or nil when it was a binary header that now waits for its attachments.
    public mutating func receive(text: UnsafeRawBufferPointer) throws(SocketIOError) -> SocketIOMessage? {
        if remainingAttachments > 0 { throw .expectedAttachment(remaining: remainingAttachments) }
        let packet = try SocketIOPacket.decode(text, limits: limits)
        if packet.attachments > 0 {
            pending = packet
            attachments = []
            attachments.reserveCapacity(packet.attachments)
            return nil
        }
        return SocketIOMessage(packet: packet)
    }

    /// As ``receive(text:)`` for bytes in an array.
    public mutating func receive(text: [UInt8]) throws(SocketIOError) -> SocketIOMessage? {
        try withBytes(of: text) { raw throws(SocketIOError) in try receive(text: raw) }
    }

    /// A binary message: the completed message when it was the last attachment due, else nil.
    public mutating func receive(binary: [UInt8]) throws(SocketIOError) -> SocketIOMessage? {
        guard let packet = pending else { throw .unexpectedAttachment }
        attachments.append(binary)
        guard attachments.count == packet.attachments else { return nil }
        pending = nil
        defer { attachments = [] }
        return SocketIOMessage(packet: packet, attachments: attachments)
    }
}
