/// Server settings for permessage-deflate (RFC 7692).
public struct PerMessageDeflateSettings: Sendable, Equatable {
    /// False: every offer is declined (no `Sec-WebSocket-Extensions` in the 101) and RSV1 stays
    /// reserved. Default true.
    public var isEnabled: Bool
    /// Messages whose payload is shorter than this many bytes are sent uncompressed even to peers
    /// that negotiated the extension (RSV1 is per message, §6). Default 128: below that a message
    /// compressed with an empty window rarely shrinks by more than the CPU it costs.
    public var threshold: Int

    /// Room streams per event loop (``SharedDeflateStream``): 0 keeps `server_no_context_takeover` in
    /// every response (each message compressed alone); more lets a room's messages refer to its earlier
    /// ones for peers that did not ask for `server_no_context_takeover`. Default 0 here; the gateway's
    /// `--deflate-room-contexts` sets it.
    public var sharedContexts: Int
    /// The window of a room stream, 9...15 (default 13). A peer whose `server_max_window_bits` is
    /// smaller gets context-free copies.
    public var sharedWindowBits: Int

    /// - Parameters:
    ///   - isEnabled: accept offers at all (default true).
    ///   - threshold: smallest payload in bytes that is sent compressed (default 128).
    ///   - sharedContexts: room streams per loop, 0 = none (default 0).
    ///   - sharedWindowBits: their window, clamped to 9...15 (default 13).
    public init(isEnabled: Bool = true, threshold: Int = 128, sharedContexts: Int = 0, sharedWindowBits: Int = 13) {
        self.isEnabled = isEnabled
        self.threshold = max(0, threshold)
        self.sharedContexts = max(0, sharedContexts)
        self.sharedWindowBits = min(15, max(9, sharedWindowBits))
    }

    /// Whether an outgoing payload of `payloadLength` bytes should be compressed at all.
    @inlinable public func shouldCompress(payloadLength: Int) -> Bool { isEnabled && payloadLength >= threshold }
}

/// permessage-deflate parameters agreed with one client (RFC 7692 §7.1), and the negotiation.
///
/// Server policy (so that compression is shared and idle connections hold no zlib state):
/// - `server_no_context_takeover` by default: each message is compressed from an empty window, so one
///   compressed frame per room message serves every member (one ``Deflater`` per thread). With
///   ``PerMessageDeflateSettings/sharedContexts`` above 0 it is answered only when offered, and a
///   room's members share one compressor with context takeover (``SharedDeflateStream``).
/// - `client_no_context_takeover` always, even when not offered (§7.1.1.2 allows that): each
///   client message inflates from an empty window, so one ``Inflater`` per event loop serves every
///   connection and an idle connection keeps no zlib memory. Chrome accepts it in a response.
/// - Server window 15, or the `server_max_window_bits` the client asks for when it is 9...15.
///   A request for 8 declines that offer: zlib cannot make a raw deflate stream with an 8-bit
///   window (it silently uses 9, which an 8-bit peer could not inflate).
/// - `client_max_window_bits` is answered only when offered, always with a value: the offered
///   one, or 15 when offered without a value (§7.1.2.2). The ``Inflater`` uses window 15, which
///   inflates data made with any smaller window.
///
/// Offers are tried in the client's order and the first acceptable one wins; unacceptable ones are
/// declined, never refused with an HTTP error (§5: "decline"; coder/websocket#258).
public struct PerMessageDeflate: Sendable, Equatable {
    /// The server compresses each message from an empty window (true unless room streams are on
    /// and the peer did not ask for it).
    public var serverNoContextTakeover: Bool
    /// The client compresses each message from an empty window.
    public var clientNoContextTakeover: Bool
    /// Base-2 log of the LZ77 window the server compresses with, 9...15.
    public var serverMaxWindowBits: Int
    /// The `client_max_window_bits` value of the response (8...15), nil when it was not offered.
    public var clientMaxWindowBits: Int?
    /// True when the response names `server_max_window_bits` (it was offered).
    public var announcesServerMaxWindowBits: Bool

    /// The extension name, "permessage-deflate" (§5).
    public static let name = "permessage-deflate"

    /// The offer a browser sends, `permessage-deflate; client_max_window_bits`; what clients of
    /// this package offer too.
    public static let clientOffer = "permessage-deflate; client_max_window_bits"

    /// Parameters chosen directly; for tests and clients. Use ``negotiate(_:settings:)`` on a server.
    public init(
        serverNoContextTakeover: Bool = true, clientNoContextTakeover: Bool = true, serverMaxWindowBits: Int = 15,
        clientMaxWindowBits: Int? = nil, announcesServerMaxWindowBits: Bool = false
    ) {
        self.serverNoContextTakeover = serverNoContextTakeover
        self.clientNoContextTakeover = clientNoContextTakeover
        self.serverMaxWindowBits = serverMaxWindowBits
        self.clientMaxWindowBits = clientMaxWindowBits
        self.announcesServerMaxWindowBits = announcesServerMaxWindowBits
    }

    /// Server side: the first acceptable `permessage-deflate` offer in `headers`'
    /// `Sec-WebSocket-Extensions` fields, or nil (then send no extension header and keep RSV1 reserved).
    ///
    /// Nil when `settings.isEnabled` is false, when nothing was offered, or when every offer is
    /// declined. Never throws: a malformed header only declines the offers it spoils.
    public static func negotiate(_ headers: HTTPHeaders, settings: PerMessageDeflateSettings = PerMessageDeflateSettings()) -> PerMessageDeflate? {
        guard settings.isEnabled else { return nil }
        return negotiate(offers: WebSocketExtensionOffer.parse(headers), serverContextTakeover: settings.sharedContexts > 0)
    }

    /// Server side: the first acceptable offer among `offers` (other extensions skipped), or nil.
    /// `serverContextTakeover`: leave `server_no_context_takeover` out of the response unless the
    /// offer asks for it (§7.1.1.1), so the server may compress with room streams.
    public static func negotiate(offers: [WebSocketExtensionOffer], serverContextTakeover: Bool = false) -> PerMessageDeflate? {
        for offer in offers where offer.hasName(name) {
            if let accepted = accept(offer, serverContextTakeover: serverContextTakeover) { return accepted }
        }
        return nil
    }

    /// The parameters with which the server accepts `offer`, or nil to decline it (§7.1: an unknown
    /// parameter, a duplicate, a bad value, or a configuration we do not support).
    static func accept(_ offer: WebSocketExtensionOffer, serverContextTakeover: Bool = false) -> PerMessageDeflate? {
        guard offer.isWellFormed else { return nil }
        var seen = Set<String>()
        var result = PerMessageDeflate(serverNoContextTakeover: !serverContextTakeover)
        for parameter in offer.parameters {
            let key = String(decoding: parameter.name.utf8.map(asciiLower), as: UTF8.self)
            guard seen.insert(key).inserted else { return nil }
            switch key {
            case "server_no_context_takeover", "client_no_context_takeover":
                // §7.1.1.1, §7.1.1.2: no value. We impose client_no_context_takeover whether offered or not;
                // server_no_context_takeover is honoured when offered (room streams skip that peer).
                guard parameter.value == nil else { return nil }
                if key == "server_no_context_takeover" { result.serverNoContextTakeover = true }
            case "server_max_window_bits":
                // §7.1.2.1: a value is required.
                guard let value = parameter.value, let bits = windowBits(value) else { return nil }
                // zlib's raw deflate has no 8-bit window (it would use 9): decline (C39 e).
                guard bits >= 9 else { return nil }
                result.serverMaxWindowBits = bits
                result.announcesServerMaxWindowBits = true
            case "client_max_window_bits":
                // §7.1.2.2: value optional; the response always carries one.
                if let value = parameter.value {
                    guard let bits = windowBits(value) else { return nil }
                    result.clientMaxWindowBits = bits
                } else {
                    result.clientMaxWindowBits = 15
                }
            default:
                return nil
            }
        }
        return result
    }

    /// A window-bits value: a decimal integer 8...15 without leading zeros (§7.1.2.1, §7.1.2.2).
    static func windowBits(_ text: String) -> Int? {
        let digits = Array(text.utf8)
        guard (1...2).contains(digits.count), digits.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }), digits[0] != 0x30 else { return nil }
        let value = digits.reduce(0) { $0 * 10 + Int($1 - 0x30) }
        return (8...15).contains(value) ? value : nil
    }

    /// The `Sec-WebSocket-Extensions` value of the 101 response, e.g.
    /// `permessage-deflate; server_no_context_takeover; client_no_context_takeover; client_max_window_bits=15`.
    public var responseValue: String {
        var out = Self.name
        if serverNoContextTakeover { out += "; server_no_context_takeover" }
        if clientNoContextTakeover { out += "; client_no_context_takeover" }
        if announcesServerMaxWindowBits { out += "; server_max_window_bits=\(serverMaxWindowBits)" }
        if let clientMaxWindowBits { out += "; client_max_window_bits=\(clientMaxWindowBits)" }
        return out
    }

    /// The response header: pass it to ``WebSocketHandshake/response(extraHeaders:)``.
    public var responseHeader: HTTPHeader { HTTPHeader("Sec-WebSocket-Extensions", responseValue) }

    /// The window to compress a payload of `payloadLength` bytes with for this peer: 15 when the
    /// payload fits in the peer's window (no back-reference can then reach further than the payload
    /// is long, so the frame compressed once with window 15 for everyone is valid for this peer too),
    /// else ``serverMaxWindowBits``. Fan-out keys its compressed frames by this value, so peers that
    /// asked for a small window share a second frame only for long messages.
    @inlinable public func compressionWindowBits(payloadLength: Int) -> Int {
        payloadLength <= 1 << serverMaxWindowBits ? 15 : serverMaxWindowBits
    }

    /// Client side: the parameters a server's 101 accepted, nil when it accepted no extension.
    ///
    /// - Throws: ``PerMessageDeflateResponseError`` when the response names an extension we did not
    ///   offer, more than one element, or parameters §7.1 forbids in a response (the client must
    ///   then fail the connection, RFC 6455 §4.1).
    public static func acceptResponse(_ headers: HTTPHeaders) throws(PerMessageDeflateResponseError) -> PerMessageDeflate? {
        let elements = WebSocketExtensionOffer.parse(headers)
        guard let element = elements.first else { return nil }
        guard elements.count == 1, element.isWellFormed, element.hasName(name) else { throw .unexpectedExtension }
        var seen = Set<String>()
        var result = PerMessageDeflate(serverNoContextTakeover: false, clientNoContextTakeover: false)
        for parameter in element.parameters {
            let key = String(decoding: parameter.name.utf8.map(asciiLower), as: UTF8.self)
            guard seen.insert(key).inserted else { throw .invalidParameter(parameter.name) }
            switch key {
            case "server_no_context_takeover":
                guard parameter.value == nil else { throw .invalidParameter(key) }
                result.serverNoContextTakeover = true
            case "client_no_context_takeover":
                guard parameter.value == nil else { throw .invalidParameter(key) }
                result.clientNoContextTakeover = true
            case "server_max_window_bits":
                guard let value = parameter.value, let bits = windowBits(value) else { throw .invalidParameter(key) }
                result.serverMaxWindowBits = bits
                result.announcesServerMaxWindowBits = true
            case "client_max_window_bits":
                // §7.1.2.2: in a response it must have a value; we offered it, so it may appear.
                guard let value = parameter.value, let bits = windowBits(value) else { throw .invalidParameter(key) }
                result.clientMaxWindowBits = bits
            default:
                throw .invalidParameter(parameter.name)
            }
        }
        return result
    }
}

/// Why a client rejects a server's `Sec-WebSocket-Extensions` response (RFC 7692 §7.1, RFC 6455 §4.1).
public enum PerMessageDeflateResponseError: Error, Equatable, Sendable {
    /// Not exactly one well-formed `permessage-deflate` element.
    case unexpectedExtension
    /// An unknown, duplicated or badly valued parameter (its name).
    case invalidParameter(String)
}
