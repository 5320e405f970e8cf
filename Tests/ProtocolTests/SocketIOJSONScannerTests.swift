import Testing

@testable import Protocol

@Suite struct SocketIOJSONScannerTests {
    private func scan(_ text: String) -> SocketIOJSONScanner.Kind? {
        withBytes(text) { SocketIOJSONScanner.scan($0)?.kind }
    }

    private func elements(_ text: String) -> [String]? {
        withBytes(text) { raw in
            SocketIOJSONScanner.arrayElements(raw)?.map { String(decoding: UnsafeRawBufferPointer(rebasing: raw[$0]), as: UTF8.self) }
        }
    }

    @Test func acceptsEveryKindOfValue() {
        #expect(scan(#"{"a":[1,-2.5e+3,true,false,null,"x\"\\\/\b\f\n\r\t\u00e9"],"b":{}}"#) == .object)
        #expect(scan(" [ ] ") == .array)
        #expect(scan(#""s""#) == .string)
        #expect(scan("-0") == .number)
        #expect(scan("0.5E-7") == .number)
        #expect(scan("null") == .literal)
        #expect(scan(#"[{"a":[{}]},[[]]]"#) == .array)
    }

    @Test func refusesMalformedJSON() {
        for bad in [
            "", " ", "[", "]", "[1,]", "[,1]", "{\"a\"}", "{\"a\":}", "{\"a\":1,}", "{a:1}", "01", "1.", ".5", "-", "1e", "+1",
            "tru", "nul", "\"abc", "\"\\x\"", "\"\\u12G4\"", "\"a\u{1}b\"", "[1 2]", "{\"a\":1 \"b\":2}", "[1]x", "1 2", "'a'", "[\"a\",]"
        ] {
            #expect(scan(bad) == nil, "\(bad.debugDescription)")
        }
    }

    @Test func boundsNesting() {
        let ok = String(repeating: "[", count: SocketIOJSONScanner.maxDepth) + String(repeating: "]", count: SocketIOJSONScanner.maxDepth)
        let deep = String(repeating: "[", count: SocketIOJSONScanner.maxDepth + 1) + String(repeating: "]", count: SocketIOJSONScanner.maxDepth + 1)
        #expect(scan(ok) == .array)
        #expect(scan(deep) == nil)
        // Splitting an array applies the same bound as scanning it.
        #expect(withBytes(ok) { SocketIOJSONScanner.arrayElements($0)?.count } == 1)
        #expect(withBytes(deep) { SocketIOJSONScanner.arrayElements($0) } == nil)
        // Hostile depth fails fast without recursion.
        #expect(scan(String(repeating: "[", count: 1_000_000)) == nil)
    }

    @Test func splitsTopLevelArrayElementsKeepingTheirBytes() {
        #expect(elements(#"["ev", {"b":1, "a":[2]} ,3,"x,y"]"#) == ["\"ev\"", #"{"b":1, "a":[2]}"#, "3", "\"x,y\""])
        #expect(elements("[]") == [])
        #expect(elements(" [ null ] ") == ["null"])
        #expect(elements(#"{"a":1}"#) == nil)
        #expect(elements("[1,]") == nil)
        for bad in ["", "[", " [ ", "[1", "[1 2]", "[1]x", "[1],", "[,]", "[1,,2]", "[\"a\"", "[{]", "]"] {
            #expect(elements(bad) == nil, "\(bad.debugDescription)")
        }
    }

    @Test func decodesStrings() {
        func decode(_ text: String) -> String? { withBytes(text) { SocketIOJSONScanner.decodeString($0, 0..<$0.count) } }
        #expect(decode(#""join""#) == "join")
        #expect(decode(#""a\"b\u00e9""#) == "a\"bé")
        #expect(decode("\"é\"") == "é")
        #expect(decode("1") == nil)
        #expect(decode(#""a"b""#) == nil)
    }
}
