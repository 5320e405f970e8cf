// libFuzzer entry point for the client envelope scanner (Envelope.decodeWithID / JSONScanner),
// differential against Foundation's JSONSerialization. Built by `FUZZ_TARGET=envelope Fuzz/run.sh`
// together with the Protocol sources; seeds in Fuzz/corpus/envelope.
//
// Each input is decoded twice: as a whole client frame, and as the `data` of a publish frame.
// Checked: no crash or hang; whatever the scanner accepts, JSONSerialization accepts too, and every
// `data` it returns is valid JSON and the input minus insignificant whitespace; whatever
// JSONSerialization accepts and the scanner calls malformed is one of the documented differences
// (trailing commas, byte order marks, UTF-16/32, a Double-overflowing number that Foundation
// skipped because a duplicate key replaced it).
import Foundation

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzEnvelope(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let input = Array(UnsafeBufferPointer(start: data, count: size))
    check(frame: input)
    let prefix = Array(#"{"op":"publish","room":"r","id":7,"data":"#.utf8)
    if let request = check(frame: prefix + input + [0x7D]) {
        guard case .publish(let room, let fragment, let id) = request else { preconditionFailure("not a publish: \(request)") }
        precondition(room == "r" && id == JSONFragment("7"))
        // The input may close `data` and add members of its own; when it is one JSON value, `data` is all of it.
        let compacted = compact(input)
        precondition(compacted.starts(with: fragment.bytes), "data is not the input minus whitespace")
        precondition(fragment.bytes == compacted || !isJSON(input), "data is not the whole input")
    }
    return 0
}

/// Decodes `frame`, checks the verdict against JSONSerialization, returns the request when accepted.
@discardableResult
private func check(frame: [UInt8]) -> ClientRequest? {
    let ours: Result<(request: ClientRequest, id: JSONFragment?), EnvelopeError> = frame.withUnsafeBytes { raw in
        do throws(EnvelopeError) { return .success(try Envelope.decodeWithID(raw)) } catch { return .failure(error) }
    }
    let foundationObject = (try? JSONSerialization.jsonObject(with: Data(frame))) is [String: Any]
    switch ours {
    case .success(let (request, id)):
        precondition(foundationObject, "scanner accepted what JSONSerialization refuses")
        if let id { precondition(isJSON(id.bytes), "id is not JSON") }
        switch request {
        case .publish(_, let data, _): precondition(isJSON(data.bytes), "data is not JSON")
        case .analytics(_, let data?, _): precondition(isJSON(data.bytes), "data is not JSON")
        default: break
        }
        return request
    case .failure(let error):
        let syntax = error.message == "malformed JSON" || error.message == "frame must be a JSON object"
        if syntax && error.message == "malformed JSON" && foundationObject {
            precondition(knownDifference(frame), "JSONSerialization accepted what the scanner calls malformed")
        }
        if !syntax && !error.message.contains("nested deeper") {
            precondition(foundationObject, "a field error for a frame JSONSerialization does not read as an object")
        }
        return nil
    }
}

private func isJSON(_ bytes: [UInt8]) -> Bool {
    (try? JSONSerialization.jsonObject(with: Data(bytes), options: [.fragmentsAllowed])) != nil
}

/// The documented cases where JSONSerialization accepts what RFC 8259 (and the scanner) refuse.
private func knownDifference(_ text: [UInt8]) -> Bool {
    if text.starts(with: [0xEF, 0xBB, 0xBF]) || text.starts(with: [0xFE, 0xFF]) || text.starts(with: [0xFF, 0xFE]) { return true }
    if text.prefix(4).contains(0) { return true }  // UTF-16 or UTF-32, detected by Foundation
    // Foundation checks a number's range only when it keeps the value; an exponent or a long run
    // of digits may be such a number under a key that a later duplicate replaced.
    var digits = 0
    for b in text {
        if b == UInt8(ascii: "e") || b == UInt8(ascii: "E") { return true }
        digits = b &- 0x30 < 10 ? digits + 1 : 0
        if digits > 300 { return true }
    }
    return hasTrailingComma(text)
}

/// A `,` followed (after whitespace) by `]` or `}`, outside strings.
private func hasTrailingComma(_ text: [UInt8]) -> Bool {
    var inString = false
    var escaped = false
    var afterComma = false
    for b in text {
        if inString {
            if escaped { escaped = false } else if b == 0x5C { escaped = true } else if b == 0x22 { inString = false }
            continue
        }
        switch b {
        case 0x22: inString = true; afterComma = false
        case 0x2C: afterComma = true
        case 0x20, 0x09, 0x0A, 0x0D: break
        case 0x5D, 0x7D: if afterComma { return true }
        default: afterComma = false
        }
    }
    return false
}

/// `text` without JSON whitespace outside strings (an independent re-implementation of what the
/// envelope does to `data`).
private func compact(_ text: [UInt8]) -> [UInt8] {
    var out: [UInt8] = []
    var inString = false
    var escaped = false
    for b in text {
        if inString {
            out.append(b)
            if escaped { escaped = false } else if b == 0x5C { escaped = true } else if b == 0x22 { inString = false }
        } else if b == 0x22 {
            inString = true
            out.append(b)
        } else if b != 0x20 && b != 0x09 && b != 0x0A && b != 0x0D {
            out.append(b)
        }
    }
    return out
}
