// libFuzzer entry point for the Protocol module's parsers. Built by Fuzz/run.sh together with
// the Protocol sources (SwiftPM executables cannot host libFuzzer's main).
// The first input byte picks the split point, so every parser sees the same bytes both whole
// and cut in two; every parser must either accept or throw its typed error, never crash.

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzProtocol(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    let cut = bytes.isEmpty ? 0 : Int(bytes[0]) * bytes.count / 256

    fuzzHTTP(bytes, cut: cut)
    for role in [WebSocketRole.server, .client] {
        fuzzReader(bytes, role: role, pieces: [bytes])
        fuzzReader(bytes, role: role, pieces: [Array(bytes[..<cut]), Array(bytes[cut...])])
        fuzzReader(bytes, role: role, pieces: [bytes], deflate: sharedInflater)
        fuzzReader(bytes, role: role, pieces: [Array(bytes[..<cut]), Array(bytes[cut...])], deflate: sharedInflater)
    }
    fuzzExtensions(bytes)
    bytes.withUnsafeBytes { raw in
        if let request = try? Envelope.decode(raw) { _ = Envelope.encode(request) }
        _ = Envelope.decodeServer(raw)
    }
    return 0
}

private func fuzzHTTP(_ bytes: [UInt8], cut: Int) {
    var request = HTTPHeadParser(maxHeadBytes: 4096, maxHeaderCount: 32)
    var whole: HTTPRequestHead?
    bytes.withUnsafeBytes { raw in
        if case .complete(let head, let consumed)? = try? request.feed(raw) {
            precondition(consumed > 0 && consumed <= raw.count)
            whole = head
            do throws(HTTPError) {
                _ = try WebSocketHandshake.validate(head, supportedSubprotocols: ["a", "b"]).response()
            } catch {
                _ = HTTPResponse(error: error).serialize()
            }
            _ = head.queryParameter("token")
        }
    }
    // Split in two: same head (or same failure) as whole.
    var split = HTTPHeadParser(maxHeadBytes: 4096, maxHeaderCount: 32)
    var splitHead: HTTPRequestHead?
    var failed = false
    for piece in [Array(bytes[..<cut]), Array(bytes[cut...])] where splitHead == nil && !failed {
        piece.withUnsafeBytes { raw in
            do {
                if case .complete(let head, _) = try split.feed(raw) { splitHead = head }
            } catch {
                failed = true
            }
        }
    }
    precondition((whole == nil) == (splitHead == nil), "whole and split HTTP parses disagree")
    if let whole, let splitHead {
        precondition(whole.target == splitHead.target && whole.headers == splitHead.headers)
    }

    var response = HTTPResponseHeadParser(maxHeadBytes: 4096, maxHeaderCount: 32)
    bytes.withUnsafeBytes { raw in
        if case .complete(let head, _)? = try? response.feed(raw) {
            _ = WebSocketHandshake.isValidServerResponse(head, forKey: "dGhlIHNhbXBsZSBub25jZQ==")
        }
    }
}

/// One Inflater for every reader, as one event loop shares it between its connections (libFuzzer runs one input at a time).
private let sharedInflater = Inflater()

/// Extension offers: negotiation never fails, and what it answers is a response our client accepts.
private func fuzzExtensions(_ bytes: [UInt8]) {
    let value = String(decoding: bytes, as: UTF8.self)
    let headers = HTTPHeaders([HTTPHeader("Sec-WebSocket-Extensions", value)])
    if let agreed = PerMessageDeflate.negotiate(headers) {
        precondition((9...15).contains(agreed.serverMaxWindowBits))
        let back = try? PerMessageDeflate.acceptResponse(HTTPHeaders([agreed.responseHeader]))
        precondition(back == agreed, "our response does not parse back")
    }
    _ = try? PerMessageDeflate.acceptResponse(headers)
}

private func fuzzReader(_ bytes: [UInt8], role: WebSocketRole, pieces: [[UInt8]], deflate: Inflater? = nil) {
    var reader = WebSocketReader(role: role, maxMessageSize: 64 * 1024, deflate: deflate)
    var total = 0
    for piece in pieces {
        var copy = piece
        let ok: Bool = copy.withUnsafeMutableBytes { raw in
            do {
                try reader.feed(raw) { event in
                    switch event {
                    case .text(let b):
                        precondition(UTF8Validator.isValid(b), "invalid UTF-8 delivered")
                        precondition(b.count <= 64 * 1024, "message over the limit delivered")
                        total += b.count
                    case .binary(let b):
                        precondition(b.count <= 64 * 1024, "message over the limit delivered")
                        total += b.count
                    case .ping(let b), .pong(let b): precondition(b.count <= 125)
                    case .close(let code, _): precondition(code?.isValidOnWire ?? true)
                    }
                    return true
                }
                return true
            } catch {
                return false
            }
        }
        if !ok { break }
    }
    // Without deflate nothing is delivered that was not on the wire.
    precondition(deflate != nil || total <= bytes.count)
}
