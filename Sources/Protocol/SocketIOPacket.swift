/// A Socket.IO v5 packet type (socketio/socket.io-protocol, version 5, "Packet format").
public enum SocketIOPacketType: UInt8, Equatable, Sendable {
    /// `0` CONNECT: client → server with an optional auth object; server → client with `{"sid":…}`.
    case connect = 0
    /// `1` DISCONNECT from a namespace.
    case disconnect = 1
    /// `2` EVENT: `["name", args…]`.
    case event = 2
    /// `3` ACK: the arguments of an acknowledgement, `[args…]`, with the id of the event it answers.
    case ack = 3
    /// `4` CONNECT_ERROR: server → client only, `{"message":…}`.
    case connectError = 4
    /// `5` BINARY_EVENT: an EVENT whose binary arguments follow as attachments.
    case binaryEvent = 5
    /// `6` BINARY_ACK: an ACK whose binary arguments follow as attachments.
    case binaryAck = 6
}

/// Limits applied when decoding a client's Socket.IO packet.
public struct SocketIOLimits: Equatable, Sendable {
    /// Most binary attachments per packet (the reference decoder's default is 10).
    public var maxAttachments: Int
    /// Longest namespace, in bytes, leading `/` included.
    public var maxNamespaceBytes: Int
    /// Largest ack id: 2^53 - 1, the largest integer a JavaScript client represents exactly.
    public var maxAckID: Int

    /// Defaults: 10 attachments, 256-byte namespaces, ack ids up to 2^53 - 1.
    public init(maxAttachments: Int = 10, maxNamespaceBytes: Int = 256, maxAckID: Int = (1 << 53) - 1) {
        self.maxAttachments = maxAttachments
        self.maxNamespaceBytes = maxNamespaceBytes
        self.maxAckID = maxAckID
    }
}

/// One Socket.IO v5 packet: `<type>[<attachments>-][<namespace>,][<ack id>][<JSON payload>]`,
/// e.g. `2["ev","a"]`, `42/chat,7["echo","c"]` (with the Engine.IO `4` in front on the wire),
/// `51-["up",{"_placeholder":true,"num":0}]`, `40/chat,{"token":"t"}`.
///
/// Decoded payloads are validated (reference `isPayloadValid`) and kept as raw JSON text; for
/// EVENT the name is decoded and the remaining elements are split into ``arguments``.
public struct SocketIOPacket: Equatable, Sendable {
    /// The packet type.
    public var type: SocketIOPacketType
    /// The namespace, `/` when the packet names none.
    public var namespace: String
    /// Binary attachments that follow (BINARY_EVENT / BINARY_ACK only; else 0).
    public var attachments: Int
    /// The ack id (0 is a real id); nil when absent.
    public var ackID: Int?
    /// The JSON payload as sent; nil when absent.
    public var payload: JSONFragment?
    /// EVENT / BINARY_EVENT: the event name (the payload's first element).
    public var eventName: String?
    /// EVENT: the payload elements after the name; ACK: all of them; else empty. Binary
    /// placeholders (`{"_placeholder":true,"num":N}`) are left in place.
    public var arguments: [JSONFragment]

    /// A packet with the fields given; ``eventName`` and ``arguments`` are not derived.
    public init(
        type: SocketIOPacketType, namespace: String = "/", attachments: Int = 0, ackID: Int? = nil,
        payload: JSONFragment? = nil, eventName: String? = nil, arguments: [JSONFragment] = []
    ) {
        self.type = type
        self.namespace = namespace
        self.attachments = attachments
        self.ackID = ackID
        self.payload = payload
        self.eventName = eventName
        self.arguments = arguments
    }

    /// Event names the Socket.IO API reserves; a client event with one of them is refused (as the reference decoder does).
    public static let reservedEventNames: Set<String> = ["connect", "connect_error", "disconnect", "disconnecting", "newListener", "removeListener"]

    // MARK: Decoding

    /// Decodes one packet sent by a client (the data of an Engine.IO message packet).
    ///
    /// Errors (``SocketIOError``): `emptyPacket`, `unknownPacketType` (e.g. `9`), `serverOnlyPacket`
    /// (`4`), `invalidAttachmentCount`, `invalidNamespace`, `ackIDOutOfRange`, `unexpectedAckID`
    /// (on CONNECT / DISCONNECT), `missingAckID` (ACK), `invalidPayload` (not JSON; CONNECT not an
    /// object; DISCONNECT with a payload; EVENT not a non-empty array starting with a string;
    /// ACK not an array), `reservedEventName`, `invalidUTF8`.
    /// Cost: linear in the bytes, no JSON tree (``SocketIOJSONScanner``); bound the bytes with Engine.IO's `maxPayload`.
    public static func decode(_ text: UnsafeRawBufferPointer, limits: SocketIOLimits = SocketIOLimits()) throws(SocketIOError) -> SocketIOPacket {
        guard let first = text.first else { throw .emptyPacket }
        guard UTF8Validator.isValid(text) else { throw .invalidUTF8 }
        guard first &- UInt8(ascii: "0") < 7, let type = SocketIOPacketType(rawValue: first &- UInt8(ascii: "0")) else {
            throw .unknownPacketType(first)
        }
        if type == .connectError { throw .serverOnlyPacket }
        var packet = SocketIOPacket(type: type)
        var i = 1

        if type == .binaryEvent || type == .binaryAck {
            var count = 0
            let start = i
            while i < text.count, text[i] &- UInt8(ascii: "0") < 10, i - start < 4 {
                count = count * 10 + Int(text[i] - UInt8(ascii: "0"))
                i += 1
            }
            guard i > start, i < text.count, text[i] == UInt8(ascii: "-"), count >= 1, count <= limits.maxAttachments else {
                throw .invalidAttachmentCount(limit: limits.maxAttachments)
            }
            packet.attachments = count
            i += 1
        }

        if i < text.count, text[i] == UInt8(ascii: "/") {
            let start = i
            while i < text.count, text[i] != UInt8(ascii: ",") {
                guard text[i] >= 0x20, text[i] != 0x7F else { throw .invalidNamespace(limit: limits.maxNamespaceBytes) }
                i += 1
            }
            guard i - start <= limits.maxNamespaceBytes else { throw .invalidNamespace(limit: limits.maxNamespaceBytes) }
            packet.namespace = String(decoding: UnsafeRawBufferPointer(rebasing: text[start..<i]), as: UTF8.self)
            if i < text.count { i += 1 }  // the comma
        }

        if i < text.count, text[i] &- UInt8(ascii: "0") < 10 {
            var id = 0
            let start = i
            while i < text.count, text[i] &- UInt8(ascii: "0") < 10 {
                guard i - start < 16 else { throw .ackIDOutOfRange(limit: limits.maxAckID) }
                id = id * 10 + Int(text[i] - UInt8(ascii: "0"))
                i += 1
            }
            guard id <= limits.maxAckID else { throw .ackIDOutOfRange(limit: limits.maxAckID) }
            packet.ackID = id
        }

        let body = UnsafeRawBufferPointer(rebasing: text[i...])
        try packet.validatePayload(body)
        return packet
    }

    private mutating func validatePayload(_ body: UnsafeRawBufferPointer) throws(SocketIOError) {
        switch type {
        case .connect, .disconnect:
            if ackID != nil { throw .unexpectedAckID }
        case .ack, .binaryAck:
            if ackID == nil { throw .missingAckID }
        case .event, .binaryEvent, .connectError:
            break
        }
        if body.isEmpty {
            switch type {
            case .connect, .disconnect: return
            case .event, .binaryEvent: throw .invalidPayload("EVENT payload must be an array starting with the event name")
            case .ack, .binaryAck: throw .invalidPayload("ACK payload must be an array")
            case .connectError: throw .serverOnlyPacket
            }
        }
        // Arrays are validated while split into elements; other shapes by one scan (only to name the error).
        let elements = SocketIOJSONScanner.arrayElements(body)
        let kind = elements != nil ? .array : SocketIOJSONScanner.scan(body)?.kind
        guard let kind else { throw .invalidPayload("payload is not valid JSON") }
        payload = JSONFragment(bytes: Array(body))
        switch type {
        case .connect:
            guard kind == .object else { throw .invalidPayload("CONNECT payload must be an object") }
        case .disconnect:
            throw .invalidPayload("DISCONNECT takes no payload")
        case .event, .binaryEvent:
            guard let elements, let nameRange = elements.first, let name = SocketIOJSONScanner.decodeString(body, nameRange) else {
                throw .invalidPayload("EVENT payload must be an array starting with the event name")
            }
            if Self.reservedEventNames.contains(name) { throw .reservedEventName(name) }
            eventName = name
            arguments = elements.dropFirst().map { JSONFragment(bytes: Array(UnsafeRawBufferPointer(rebasing: body[$0]))) }
        case .ack, .binaryAck:
            guard let elements else { throw .invalidPayload("ACK payload must be an array") }
            arguments = elements.map { JSONFragment(bytes: Array(UnsafeRawBufferPointer(rebasing: body[$0]))) }
        case .connectError:
            throw .serverOnlyPacket
        }
        if attachments > 0 {
            // Binary packets only (rare, at most maxPayload bytes): the one place a tree is built,
            // to check that the header's count matches what the arguments reference.
            var nums: [Int] = []
            guard let tree = JSONValue.parse(body), Self.collectPlaceholders(tree, into: &nums, limit: attachments),
                nums.sorted() == Array(0..<attachments)
            else {
                throw .placeholderMismatch(attachments: attachments)
            }
        }
    }

    /// Appends the `num` of every `{"_placeholder":true,"num":N}` in `value`; false as soon as
    /// there are more than `limit` or one is malformed.
    private static func collectPlaceholders(_ value: Any, into nums: inout [Int], limit: Int) -> Bool {
        if let array = value as? [Any] {
            return array.allSatisfy { collectPlaceholders($0, into: &nums, limit: limit) }
        }
        guard let object = value as? [String: Any] else { return true }
        if let flag = object["_placeholder"], case .bool(true) = JSONValue(flag) {
            guard let numValue = object["num"], let num = JSONValue(numValue).int, nums.count < limit else { return false }
            nums.append(num)
            return true
        }
        return object.values.allSatisfy { collectPlaceholders($0, into: &nums, limit: limit) }
    }

    /// As ``decode(_:limits:)`` for bytes in an array.
    public static func decode(_ text: [UInt8], limits: SocketIOLimits = SocketIOLimits()) throws(SocketIOError) -> SocketIOPacket {
        try withBytes(of: text) { raw throws(SocketIOError) in try decode(raw, limits: limits) }
    }

    // MARK: Encoding

    /// The text form: type, `<n>-` for binary types, `<namespace>,` unless `/`, the ack id, the payload.
    public func encoded() -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(8 + namespace.utf8.count + (payload?.bytes.count ?? 0))
        out.append(UInt8(ascii: "0") + type.rawValue)
        if type == .binaryEvent || type == .binaryAck {
            appendDecimal(attachments, to: &out)
            out.append(UInt8(ascii: "-"))
        }
        if namespace != "/" {
            out.append(contentsOf: namespace.utf8)
            out.append(UInt8(ascii: ","))
        }
        if let ackID { appendDecimal(ackID, to: &out) }
        if let payload { out.append(contentsOf: payload.bytes) }
        return out
    }

    /// This packet inside an Engine.IO message packet (`4` + ``encoded()``).
    public var engineIOPacket: EngineIOPacket { .message(encoded()) }

    /// The server's CONNECT answer: `40{"sid":"…"}`, `40/chat,{"sid":"…","pid":"…"}`. `sid` is the
    /// Socket.IO socket id (not the Engine.IO sid); `pid`, when given, is the private id the client
    /// sends back to recover this session (connection-state recovery).
    public static func connectAccepted(namespace: String, sid: String, pid: String? = nil) -> SocketIOPacket {
        var out: [UInt8] = Array(#"{"sid":"#.utf8)
        appendJSONString(sid, to: &out)
        if let pid {
            out.append(contentsOf: #","pid":"#.utf8)
            appendJSONString(pid, to: &out)
        }
        out.append(UInt8(ascii: "}"))
        return SocketIOPacket(type: .connect, namespace: namespace, payload: JSONFragment(bytes: out))
    }

    /// CONNECT_ERROR: `44/nope,{"message":"Invalid namespace"}`, with `"data":…` when given.
    public static func connectError(namespace: String, message: String, data: JSONFragment? = nil) -> SocketIOPacket {
        var out: [UInt8] = Array(#"{"message":"#.utf8)
        appendJSONString(message, to: &out)
        if let data {
            out.append(contentsOf: #","data":"#.utf8)
            out.append(contentsOf: data.bytes)
        }
        out.append(UInt8(ascii: "}"))
        return SocketIOPacket(type: .connectError, namespace: namespace, payload: JSONFragment(bytes: out))
    }

    /// EVENT `42/chat,12["ask",…]` (ack id only when the server wants an answer); BINARY_EVENT
    /// `51-…` when `attachments` > 0 (the arguments then hold the placeholders).
    public static func event(namespace: String, name: String, arguments: [JSONFragment], ackID: Int? = nil, attachments: Int = 0) -> SocketIOPacket {
        var out: [UInt8] = [UInt8(ascii: "[")]
        appendJSONString(name, to: &out)
        for argument in arguments {
            out.append(UInt8(ascii: ","))
            out.append(contentsOf: argument.bytes)
        }
        out.append(UInt8(ascii: "]"))
        return SocketIOPacket(
            type: attachments > 0 ? .binaryEvent : .event, namespace: namespace, attachments: attachments,
            ackID: ackID, payload: JSONFragment(bytes: out), eventName: name, arguments: arguments)
    }

    /// ACK `43/chat,7["c"]`: keeps the namespace of the event it answers (C36 step 3).
    public static func ack(namespace: String, id: Int, arguments: [JSONFragment], attachments: Int = 0) -> SocketIOPacket {
        var out: [UInt8] = [UInt8(ascii: "[")]
        for (i, argument) in arguments.enumerated() {
            if i > 0 { out.append(UInt8(ascii: ",")) }
            out.append(contentsOf: argument.bytes)
        }
        out.append(UInt8(ascii: "]"))
        return SocketIOPacket(
            type: attachments > 0 ? .binaryAck : .ack, namespace: namespace, attachments: attachments,
            ackID: id, payload: JSONFragment(bytes: out), arguments: arguments)
    }

    /// DISCONNECT `41` / `41/chat,`: the server ends the client's membership of a namespace.
    public static func disconnect(namespace: String) -> SocketIOPacket {
        SocketIOPacket(type: .disconnect, namespace: namespace)
    }
}
