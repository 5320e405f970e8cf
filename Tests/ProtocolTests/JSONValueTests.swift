import Foundation
import Testing

@testable import Protocol

/// Pins down how Foundation's JSONSerialization behaves on Linux, which the envelope relies on.
@Suite struct JSONValueTests {
    func roundTrip(_ json: String) -> String? {
        withBytes(json) { JSONValue.parse($0) }.flatMap(JSONValue.fragment).map(\.description)
    }

    @Test func booleansAndNumbersSurviveTheRoundTrip() {
        #expect(roundTrip("true") == "true")
        #expect(roundTrip("false") == "false")
        #expect(roundTrip("1") == "1")
        #expect(roundTrip("0") == "0")
        #expect(roundTrip("-1") == "-1")
        #expect(roundTrip("1.5") == "1.5")
        #expect(roundTrip("0.1") == "0.1")
        #expect(roundTrip("[true,1,false,0]") == "[true,1,false,0]")
        #expect(roundTrip(#"{"b":true,"n":1}"#) == #"{"b":true,"n":1}"#)
    }

    @Test func largeIntegersAreNotMangled() {
        #expect(roundTrip("9007199254740993") == "9007199254740993")  // 2^53 + 1: not representable as a Double
        #expect(roundTrip("9223372036854775807") == "9223372036854775807")
        #expect(roundTrip("-9223372036854775808") == "-9223372036854775808")
        #expect(roundTrip("12345678901234567890") == "12345678901234567890")
        #expect(roundTrip("18446744073709551616") == "18446744073709551616")
    }

    @Test func otherNumbersStayExact() throws {
        let samples = [
            "1.0", "1e20", "1e-7", "-0.0", "0.30000000000000004", "123456789012345678901234567890", "3.14159",
            "1.7976931348623157e308", "-1e-300", "18446744073709551615", "-9223372036854775809", "0", "-0"
        ]
        for sample in samples {
            let written = try #require(roundTrip(sample), "\(sample)")
            #expect(JSONValue.isJSONNumber(written), "\(sample) -> \(written)")
            let original = try #require(withBytes(sample) { JSONValue.parse($0) } as? NSNumber)
            let reparsed = try #require(withBytes(written) { JSONValue.parse($0) } as? NSNumber)
            #expect(original.description == reparsed.description, "\(sample) -> \(written)")
        }
        #expect(roundTrip("1e20") == "1e+20")
        #expect(roundTrip("123456789012345678901234567890") == "123456789012345678901234567890")
    }

    @Test func numberGrammar() {
        for good in ["0", "-0", "1", "-12", "1.5", "0.25", "1e5", "1E+5", "1.5e-07", "-0.0e0"] { #expect(JSONValue.isJSONNumber(good), "\(good)") }
        for bad in ["", "-", "01", "1.", ".5", "1e", "1e+", "+1", "inf", "nan", "1.5.2", "0x10", " 1"] { #expect(!JSONValue.isJSONNumber(bad), "\(bad)") }
    }

    @Test func nestedStructures() {
        #expect(roundTrip(#"{"b":{"y":[],"x":{}},"a":[{"k":"v"},[null]]}"#) == #"{"a":[{"k":"v"},[null]],"b":{"x":{},"y":[]}}"#)
        #expect(roundTrip(#"{"é":1,"e":2,"E":3}"#) == #"{"E":3,"e":2,"é":1}"#)
        let deep = String(repeating: "[", count: 500) + String(repeating: "]", count: 500)
        #expect(roundTrip(deep) == deep)
    }

    /// Why JSONValue exists: plain casts cannot tell 1 from true on Linux.
    @Test func castsConfuseBooleansAndNumbers() throws {
        let one = try #require(withBytes("1") { JSONValue.parse($0) })
        let yes = try #require(withBytes("true") { JSONValue.parse($0) })
        guard case .number = JSONValue(one) else { Issue.record("1 is not a number"); return }
        guard case .bool(true) = JSONValue(yes) else { Issue.record("true is not a bool"); return }
        #expect(JSONValue(yes).int == nil)
        #expect(JSONValue(one).int == 1)
    }

    @Test func compactSortedUnescapedSlashes() {
        #expect(roundTrip(#" { "z" : [ 1 , 2 ] , "a" : "x/y" } "#) == #"{"a":"x\/y","z":[1,2]}"#.replacingOccurrences(of: "\\/", with: "/"))
        #expect(roundTrip(#""\u00e9\n""#) == "\"é\\n\"")
    }

    @Test func malformed() {
        #expect(withBytes("{") { JSONValue.parse($0) } == nil)
        #expect(withBytes("") { JSONValue.parse($0) } == nil)
        #expect(withBytes("1e400") { JSONValue.parse($0) } == nil)
    }

    /// Deep nesting must fail cleanly, not overflow the stack.
    @Test func deepNesting() {
        let deep = String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000)
        _ = withBytes(deep) { JSONValue.parse($0) }
        let request = #"{"op":"publish","room":"r","data":"# + deep + "}"
        #expect(throws: EnvelopeError.self) { try withBytes(request) { try Envelope.decode($0) } }
    }
}
