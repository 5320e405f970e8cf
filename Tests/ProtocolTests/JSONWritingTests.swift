import Foundation
import Testing

@testable import Protocol

@Suite struct JSONWritingTests {
    func escaped(_ s: String) -> String {
        var out: [UInt8] = []
        appendJSONString(s, to: &out)
        return String(decoding: out, as: UTF8.self)
    }

    @Test func escaping() {
        #expect(escaped("plain") == #""plain""#)
        #expect(escaped("a\"b\\c") == #""a\"b\\c""#)
        #expect(escaped("\n\r\t\u{8}\u{C}") == #""\n\r\t\b\f""#)
        #expect(escaped("\u{0}\u{1F}") == #""\u0000\u001f""#)
        #expect(escaped("é😀/") == "\"é😀/\"")
        #expect(escaped("") == "\"\"")
    }

    /// Whatever we escape, Foundation reads back as the same string.
    @Test func foundationReadsItBack() throws {
        let samples = ["", "a\"b", "\\", "\u{0}\u{1}\u{1F}\u{7F}", "line\nbreak", "κόσμε", "😀", "</script>", "\u{2028}"]
        for sample in samples {
            let json = escaped(sample)
            let parsed = try JSONSerialization.jsonObject(with: Data(json.utf8), options: [.fragmentsAllowed]) as? String
            #expect(parsed == sample)
        }
    }

    @Test func decimals() {
        for value in [0, 7, -7, 10, 123_456_789, Int.max, Int.min] {
            var out: [UInt8] = []
            appendDecimal(value, to: &out)
            #expect(String(decoding: out, as: UTF8.self) == String(value))
        }
    }
}
