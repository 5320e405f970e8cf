import Foundation
import Testing

@testable import Protocol

/// The single-pass envelope scanner (issue 11, "bounded work per frame"): strict RFC 8259
/// validation, `data` carried as raw bytes, depth and duplicate-key rules.
@Suite struct EnvelopeScannerTests {
    func decode(_ bytes: [UInt8], maxDepth: Int = Envelope.defaultMaxDepth) throws(EnvelopeError) -> (request: ClientRequest, id: JSONFragment?) {
        try bytes.withUnsafeBytes { raw in
            Result { () throws(EnvelopeError) in try Envelope.decodeWithID(raw, maxDepth: maxDepth) }
        }.get()
    }

    func decode(_ json: String, maxDepth: Int = Envelope.defaultMaxDepth) throws(EnvelopeError) -> ClientRequest {
        try decode(Array(json.utf8), maxDepth: maxDepth).request
    }

    func failure(_ bytes: [UInt8], maxDepth: Int = Envelope.defaultMaxDepth) -> EnvelopeError? {
        do { _ = try decode(bytes, maxDepth: maxDepth); return nil } catch { return error }
    }

    func failure(_ json: String, maxDepth: Int = Envelope.defaultMaxDepth) -> EnvelopeError? {
        failure(Array(json.utf8), maxDepth: maxDepth)
    }

    /// The `data` a publish frame carrying `data` decodes to.
    func publishedData(_ data: String) throws -> String {
        guard case .publish(_, let fragment, _) = try decode(#"{"op":"publish","room":"r","data":"# + data + "}") else {
            throw EnvelopeError(code: .badRequest, message: "not a publish")
        }
        return fragment.description
    }

    static let malformed = EnvelopeError(code: .badRequest, message: "malformed JSON")

    // MARK: data is carried, not rebuilt

    @Test func dataKeepsTheClientsTextMinusWhitespace() throws {
        #expect(try publishedData(#" { "z" : [ 1 , 2 ] ,"a":"x / y" } "#) == #"{"z":[1,2],"a":"x / y"}"#)
        #expect(try publishedData(#""\u00e9\/\n\"  \\""#) == #""\u00e9\/\n\"  \\""#)
        #expect(try publishedData(#"{"k":1,"k":2}"#) == #"{"k":1,"k":2}"#, "duplicates inside data are the client's business")
        #expect(try publishedData("1.0") == "1.0")
        #expect(try publishedData("-0") == "-0")
        #expect(try publishedData("[\t\r\n]") == "[]")
        #expect(try publishedData(#"" \t ""#) == #"" \t ""#, "whitespace inside strings is data")
        #expect(try publishedData(#"{"a\"b ":" ,\\"}"#) == #"{"a\"b ":" ,\\"}"#)
    }

    /// Every accepted `data`, spliced into a server frame, is JSON that Foundation reads back to the
    /// same value as the client's text.
    @Test func splicedDataIsValidJSON() throws {
        let samples = [
            #"{"a":[1,{"b":null}],"c":"ü😀"}"#, #"  [ true , false , null ]  "#, #""\ud83d\ude00""#, "12345678901234567890",
            "1e-400", "0e400", "1.7976931348623157e308", #"{"":{"":[]}}"#, "\"\u{7F}\"", #""\u0000""#
        ]
        for sample in samples {
            let data = try publishedData(sample)
            let frame = Envelope.message(room: "r", offset: "1", data: JSONFragment(data))
            let parsed = try #require(try JSONSerialization.jsonObject(with: Data(frame)) as? [String: Any], "\(sample)")
            let direct = try JSONSerialization.jsonObject(with: Data(sample.utf8), options: [.fragmentsAllowed])
            let canonical = { (value: Any) in try JSONSerialization.data(withJSONObject: [value], options: [.sortedKeys]) }
            #expect(try canonical(parsed["data"]!) == canonical(direct), "\(sample)")
        }
    }

    @Test func idIsTheTokenAsSent() throws {
        #expect(try decode(Array(#"{"op":"leave","room":"r","id":"a\/b"}"#.utf8)).id == JSONFragment(#""a\/b""#))
        #expect(try decode(Array(#"{"op":"leave","room":"r","id":1.50}"#.utf8)).id == JSONFragment("1.50"))
        #expect(try decode(Array(#"{"op":"leave","room":"r","id": -7 }"#.utf8)).id == JSONFragment("-7"))
    }

    // MARK: envelope fields

    @Test func escapedKeysAndValuesAreDecoded() throws {
        #expect(try decode(#"{"\u006fp":"jo\u0069n","r\u006F\u006Fm":"lob\/by","since":"1\u002d0"}"#) == .join(room: "lob/by", since: "1-0"))
        #expect(try decode(#"{"op":"auth","token":"a\"b\\c\ud83d\ude00\t"}"#) == .auth(token: "a\"b\\c😀\t"))
        #expect(try decode(#"{"op":"analytics","event":"caf\u00e9"}"#) == .analytics(event: "café", data: nil))
        #expect(failure(#"{"op":"join","room":"a\u0020b"}"#)?.code == .invalidRoom, "the decoded room is checked")
        #expect(
            try decode(#"{"\u0000op":"join","op":"leave","\u0000":1,"room\u0000":2,"room":"r"}"#) == .leave(room: "r"),
            "keys that differ only by a NUL are other keys")
    }

    @Test func unknownFieldsAreValidatedAndIgnored() throws {
        #expect(try decode(#"{"x":{"y":[1,2,{"z":"w"}]},"op":"leave","opp":1,"o":2,"room":"r","DATA":[]}"#) == .leave(room: "r"))
        #expect(failure(#"{"x":[1,],"op":"leave","room":"r"}"#) == Self.malformed)
    }

    @Test func duplicateEnvelopeKeysAreRefused() {
        #expect(failure(#"{"op":"join","op":"leave","room":"r"}"#) == EnvelopeError(code: .badRequest, message: "duplicate field 'op'"))
        #expect(
            failure(#"{"op":"join","room":"a","\u0072oom":"b","id":5}"#)
                == EnvelopeError(code: .badRequest, message: "duplicate field 'room'", id: JSONFragment("5")))
        #expect(failure(#"{"op":"publish","room":"r","data":1,"data":2}"#)?.message == "duplicate field 'data'")
        #expect(failure(#"{"op":"join","room":"r","id":1,"id":2}"#) == EnvelopeError(code: .badRequest, message: "duplicate field 'id'"))
        #expect(failure(#"{"op":"join","room":"r","id":1,"id":"two"}"#)?.id == nil, "an ambiguous id is not echoed")
        // A syntax error anywhere wins over a duplicate.
        #expect(failure(#"{"op":"join","op":"leave","room":"r",}"#) == Self.malformed)
    }

    // MARK: depth

    func nested(_ levels: Int) -> String {
        (0..<levels).map { $0 % 2 == 0 ? "[" : #"{"k":"# }.joined() + "0" + (0..<levels).reversed().map { $0 % 2 == 0 ? "]" : "}" }.joined()
    }

    @Test func dataMayNestSixtyFourLevels() throws {
        let deepest = nested(64)
        #expect(try publishedData(deepest) == deepest)
        #expect(
            failure(#"{"op":"publish","room":"r","id":1,"data":"# + nested(65) + "}")
                == EnvelopeError(code: .badRequest, message: "data nested deeper than 64 levels"))
        #expect(
            failure(#"{"op":"publish","room":"r","data":"# + String(repeating: "[", count: 100_000))?.message
                == "data nested deeper than 64 levels", "stops at the limit, long before the end")
    }

    @Test func depthIsAParameter() throws {
        #expect(try decode(#"{"op":"publish","room":"r","data":[[1]]}"#, maxDepth: 2) == .publish(room: "r", data: JSONFragment("[[1]]"), id: nil))
        #expect(failure(#"{"op":"publish","room":"r","data":[[[1]]]}"#, maxDepth: 2)?.message == "data nested deeper than 2 levels")
        #expect(failure(#"{"x":[[[1]]],"op":"leave","room":"r"}"#, maxDepth: 2)?.message == "JSON nested deeper than 2 levels")
        #expect(failure(#"[[[1]]]"#, maxDepth: 2)?.message == "JSON nested deeper than 2 levels")
        #expect(failure(#"[[1]]"#, maxDepth: 2)?.message == "frame must be a JSON object")
        #expect(
            try decode(#"{"op":"publish","room":"r","data":[]}"#, maxDepth: .max) == .publish(room: "r", data: JSONFragment("[]"), id: nil),
            "a huge limit is clamped (65,536), not allocated")
        #expect(
            try decode(#"{"op":"publish","room":"r","data":[]}"#, maxDepth: -5) == .publish(room: "r", data: JSONFragment("[]"), id: nil),
            "limits below 1 count as 1")
    }

    // MARK: strict RFC 8259

    @Test func malformedTextIsRefused() {
        let bad: [String] = [
            #"{"op":"leave","room":"r",}"#, #"{"op":"leave",,"room":"r"}"#, #"{"op":"leave" "room":"r"}"#, #"{"op":"leave","room":"r"}x"#,
            #"{"op":"leave","room":"r"}}"#, #"{'op':'leave'}"#, #"{op:"leave"}"#, #"{"op":"leave","room":"r" /* c */}"#,
            "{\"op\":\"leave\",\"room\":\"r\"}\u{0}", "{\u{0C}\"op\":\"leave\"}", "{\u{A0}\"op\":\"leave\"}"
        ]
        for text in bad { #expect(failure(text) == Self.malformed, "\(text)") }
        let badData: [String] = [
            "[1,]", "[,1]", "[1 2]", "{\"a\"}", "{\"a\":}", "{\"a\" 1}", "{1:1}", "{\"a\":1,}", "[", "]", "{", "",
            "01", "-01", "1.", ".5", "+1", "-", "1e", "1e+", "1.e5", "0x10", "NaN", "Infinity", "-Infinity", "1e400", "-1e400",
            "1.7976931348623159e308", "1000e306", "1" + String(repeating: "0", count: 309), "tru", "True", "nulll", "nul", "falsee",
            "\"abc", "\"\\x\"", "\"\\U0041\"", "\"\\u12\"", "\"\\u12G4\"", "\"\\ud800\"", "\"\\udc00\"", "\"\\ude00\\ud83d\"",
            "\"\\ud800\\u0041\"", "\"\t\"", "\"\n\"", "\"\u{1F}\""
        ]
        for data in badData {
            #expect(failure(#"{"op":"publish","room":"r","data":"# + data + "}") == Self.malformed, "\(data.debugDescription)")
        }
        let quote = Array("\"".utf8)
        let badUTF8: [[UInt8]] = [
            [0xC0, 0x80], [0xC3], [0xE0, 0x80, 0x80], [0xED, 0xA0, 0x80], [0xF5, 0x80, 0x80, 0x80],
            [0xF4, 0x90, 0x80, 0x80], [0x80], [0xFF], [0xF0, 0x9F, 0x98]
        ]
        for bytes in badUTF8 {
            let frame = Array(#"{"op":"publish","room":"r","data":"#.utf8) + quote + bytes + quote + [0x7D]
            #expect(failure(frame) == Self.malformed, "\(bytes)")
            let key = Array(#"{"op":"leave","room":"r","#.utf8) + quote + bytes + quote + Array(":1}".utf8)
            #expect(failure(key) == Self.malformed, "key \(bytes)")
        }
        #expect(failure([0xEF, 0xBB, 0xBF] + Array(#"{"op":"leave","room":"r"}"#.utf8)) == Self.malformed, "no byte order mark (RFC 8259 §8.1)")
    }

    @Test func everythingRFC8259AllowsIsAccepted() throws {
        let good = [
            "0", "-0", "0.0", "-0.5e-3", "1E+5", "1e05", "12345678901234567890123456789", "1e-400", "0e99999999999",
            "0.01e310", "1.7976931348623158e308", "1" + String(repeating: "0", count: 308), "true", "false", "null",
            #""\"\\\/\b\f\n\r\t\u0000\uFFFF\uD83D\uDE00""#, "\"\u{7F}é€😀\"", "[]", "{}", "[[],{}]", #"{"":""}"#, " \t\r\n1 \t\r\n"
        ]
        for data in good {
            #expect(throws: Never.self, "\(data)") { try publishedData(data) }
        }
    }

    /// The issue 11 payloads decode, and their data is the frame's own bytes.
    @Test func largeHostilePayloadsDecodeToTheirOwnBytes() throws {
        for element in ["0", "{}", #""x""#] {
            let data = "[" + Array(repeating: element, count: 200_000).joined(separator: ",") + "]"
            #expect(try publishedData(data) == data)
        }
    }

    // MARK: same verdict as JSONSerialization

    /// For many generated and mutated texts, the scanner finds a top-level JSON object exactly when
    /// Foundation's JSONSerialization does, except for the documented differences:
    /// Foundation also accepts trailing commas (`[1,]`, `{"a":1,}`), a leading byte order mark and
    /// UTF-16/32 texts, all of which RFC 8259 forbids, and a number that overflows a Double when a
    /// later duplicate key replaces it (it checks the range only of values it keeps); nesting is
    /// kept well under both depth limits.
    @Test func acceptsExactlyWhatJSONSerializationAccepts() {
        var rng = SplitMix64(seed: 0x5EED)
        var checked = 0
        var agreedValid = 0
        for round in 0..<20_000 {
            var text = Array(("{\"op\":\"x\",\"k\":" + Generator.value(&rng, depth: 0) + "}").utf8)
            for _ in 0..<(round % 4) { Generator.mutate(&text, &rng) }
            let ours = isObject(text)
            let foundation = (try? JSONSerialization.jsonObject(with: Data(text))) is [String: Any]
            if ours != foundation {
                let explained =
                    !ours
                    && (Generator.hasTrailingComma(text) || text.starts(with: [0xEF, 0xBB, 0xBF]) || looksLikeUTF16(text)
                        || isObject(Generator.withoutOverflowingNumbers(text)))
                #expect(explained, "scanner \(ours), JSONSerialization \(foundation): \(String(decoding: text, as: UTF8.self).debugDescription)")
            } else if ours {
                agreedValid += 1
            }
            checked += 1
        }
        #expect(checked == 20_000)
        #expect(agreedValid > 5_000, "the generator must produce plenty of valid texts")
    }

    /// True when the scanner judged `text` to be a JSON object (whatever the envelope then said).
    func isObject(_ text: [UInt8]) -> Bool {
        guard let error = failure(text, maxDepth: 200) else { return true }
        return error.message != "malformed JSON" && error.message != "frame must be a JSON object" && !error.message.contains("nested deeper")
    }

    func looksLikeUTF16(_ text: [UInt8]) -> Bool {
        text.count >= 2 && (text[0] == 0 || text[1] == 0)
    }
}

/// Deterministic random numbers for generated tests (SplitMix64).
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Random JSON texts and byte mutations of them.
enum Generator {
    static let numbers = [
        "0", "-0", "1", "-12", "3.25", "1e5", "1E-5", "-0.0e+0", "12345678901234567890", "1e308", "1e309",
        "1.7976931348623157e308", "1.7976931348623159e308", "1e-400", "0e400", "9007199254740993", "0.1e310"
    ]
    static let strings = [
        "", "a", "é", "😀", #"\""#, #"\\"#, #"\/"#, #"\n"#, #"\u0041"#, #"\u00e9"#, #"\ud83d\ude00"#, #"\ud800"#,
        #"\udc00"#, "x y", "\u{7F}", #"\u0000"#
    ]
    static let alphabet: [UInt8] = Array("{}[]\",:\\ \t\n0123456789.eE+-tfnulrsa/".utf8) + [0x00, 0x1F, 0x7F, 0xC3, 0xA9, 0xED, 0xA0, 0xF0, 0x80, 0xBF]

    static func value(_ rng: inout SplitMix64, depth: Int) -> String {
        let pick = Int.random(in: 0..<(depth > 5 ? 6 : 9), using: &rng)
        func ws() -> String { ["", "", "", " ", "\n\t", "\r "].randomElement(using: &rng)! }
        switch pick {
        case 0, 1: return numbers.randomElement(using: &rng)!
        case 2, 3: return "\"" + (0..<Int.random(in: 0...3, using: &rng)).map { _ in strings.randomElement(using: &rng)! }.joined() + "\""
        case 4: return ["true", "false", "null"].randomElement(using: &rng)!
        case 5: return ws() + "[" + ws() + "]"
        case 6, 7:
            let n = Int.random(in: 1...4, using: &rng)
            return "[" + (0..<n).map { _ in ws() + value(&rng, depth: depth + 1) + ws() }.joined(separator: ",") + "]"
        default:
            let n = Int.random(in: 0...4, using: &rng)
            return "{"
                + (0..<n).map { _ in
                    ws() + "\"" + strings.randomElement(using: &rng)! + "\"" + ws() + ":" + ws() + value(&rng, depth: depth + 1)
                }.joined(separator: ",") + ws() + "}"
        }
    }

    static func mutate(_ text: inout [UInt8], _ rng: inout SplitMix64) {
        guard !text.isEmpty else { text = [alphabet.randomElement(using: &rng)!]; return }
        let i = Int.random(in: 0..<text.count, using: &rng)
        switch Int.random(in: 0..<4, using: &rng) {
        case 0: text.remove(at: i)
        case 1: text.insert(alphabet.randomElement(using: &rng)!, at: i)
        case 2: text[i] = alphabet.randomElement(using: &rng)!
        default:
            let j = Int.random(in: i...min(text.count - 1, i + 8), using: &rng)
            text.insert(contentsOf: text[i...j], at: i)
        }
    }

    /// `text` with the generator's Double-overflowing numbers replaced by `0`.
    static func withoutOverflowingNumbers(_ text: [UInt8]) -> [UInt8] {
        var s = String(decoding: text, as: UTF8.self)
        for number in ["1.7976931348623159e308", "1e309", "0.1e310"] { s = s.replacingOccurrences(of: number, with: "0") }
        return Array(s.utf8)
    }

    /// A `,` followed (after whitespace) by `]` or `}`, outside strings: a trailing comma.
    static func hasTrailingComma(_ text: [UInt8]) -> Bool {
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
}
