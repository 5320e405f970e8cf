import Testing

@testable import Protocol

@Suite struct JSONFragmentTests {
    @Test func fragments() {
        #expect(JSONFragment.string("a\"b").description == #""a\"b""#)
        #expect(JSONFragment.number(-42).bytes == Array("-42".utf8))
        #expect(JSONFragment.null.description == "null")
        #expect(JSONFragment(#"{"a":1}"#) == JSONFragment(bytes: Array(#"{"a":1}"#.utf8)))
    }

    @Test func textAndEquality() {
        let fragment = JSONFragment(#"{"text":"hi"}"#)
        #expect(fragment.description == #"{"text":"hi"}"#)
        #expect(Set([fragment, JSONFragment(bytes: fragment.bytes)]).count == 1)
    }
}
