// libFuzzer entry point for the admin port's request-head parsing: Protocol's HTTPHeadParser with the limits
// AdminConnection uses (8 KiB head, 100 headers), keep-alive style (after a complete head the rest of the
// input is the next request), and the Content-Length / Transfer-Encoding framing decision the admin port
// makes after each head (RFC 9112 §6.3; the rule against request smuggling, restated here from
// Sources/Gateway/AdminServer.swift, which cannot be compiled without the event loop).
// Built by Fuzz/run.sh with the Protocol sources. Every split must give the same heads as the whole input.

private let adminMaxHeadBytes = 8192
private let adminMaxHeaderCount = 100
private let adminMaxBody = 1 << 20

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzAdminHTTP(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    let whole = parseAll(bytes, pieces: [bytes.count])
    // Cut in two at a point the first byte picks, and byte at a time for short inputs.
    let cut = bytes.isEmpty ? 0 : Int(bytes[0]) * bytes.count / 256
    let split = parseAll(bytes, pieces: [cut, bytes.count - cut])
    precondition(whole == split, "whole and split parses disagree: \(whole) vs \(split)")
    if bytes.count <= 1024 {
        let single = parseAll(bytes, pieces: Array(repeating: 1, count: bytes.count))
        precondition(whole == single, "whole and byte-at-a-time parses disagree: \(whole) vs \(single)")
    }
    return 0
}

/// What one request came to: its target and framing verdict, or the status it was refused with.
private enum Outcome: Equatable {
    case request(target: String, headerCount: Int, framing: Framing)
    case refused(status: Int)
}

private enum Framing: Equatable {
    case none
    case length(Int)
    case rejected(status: Int)
}

/// Feeds `bytes` in pieces of the given sizes; after each complete head, skips its body (Content-Length) and
/// parses the next head from what follows, as the admin port would on a keep-alive connection.
private func parseAll(_ bytes: [UInt8], pieces: [Int]) -> [Outcome] {
    var parser = HTTPHeadParser(maxHeadBytes: adminMaxHeadBytes, maxHeaderCount: adminMaxHeaderCount)
    var outcomes: [Outcome] = []
    var bodyToSkip = 0
    var start = 0
    var pending: [UInt8] = []  // bytes after a head, not yet fed
    for size in pieces {
        pending += bytes[start..<(start + size)]
        start += size
        while !pending.isEmpty {
            if bodyToSkip > 0 {
                let n = min(bodyToSkip, pending.count)
                pending.removeFirst(n)
                bodyToSkip -= n
                continue
            }
            let step: (result: HTTPHeadParser.Result?, error: HTTPError?) = pending.withUnsafeBytes { raw in
                do throws(HTTPError) { return (try parser.feed(raw), nil) } catch { return (nil, error) }
            }
            if let error = step.error {
                precondition([400, 431].contains(error.status.rawValue), "unexpected status \(error.status.rawValue)")
                outcomes.append(.refused(status: error.status.rawValue))
                return outcomes
            }
            switch step.result! {
            case .needMore:
                pending = []
            case .complete(let head, let consumed):
                precondition(consumed > 0 && consumed <= pending.count)
                pending.removeFirst(consumed)
                let framing = adminFraming(head)
                outcomes.append(.request(target: head.target, headerCount: head.headers.count, framing: framing))
                switch framing {
                case .none: break
                case .length(let n): bodyToSkip = n
                case .rejected: return outcomes
                }
                if outcomes.count > 64 { return outcomes }
            }
        }
    }
    return outcomes
}

/// AdminConnection's framing rule: both framings, several differing lengths or a non-digit length are 400;
/// over 1 MiB is 413; Transfer-Encoding alone is 400 (no chunked bodies).
private func adminFraming(_ h: HTTPRequestHead) -> Framing {
    if h.headers["Transfer-Encoding"] != nil && h.headers["Content-Length"] != nil { return .rejected(status: 400) }
    let lengths = Set(h.headers.values("Content-Length"))
    if let cl = lengths.first {
        guard lengths.count == 1, !cl.isEmpty, cl.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }),
            let n = Int(cl)
        else { return .rejected(status: 400) }
        return n <= adminMaxBody ? .length(n) : .rejected(status: 413)
    }
    return h.headers["Transfer-Encoding"] != nil ? .rejected(status: 400) : .none
}
