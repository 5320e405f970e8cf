import Testing

@testable import Protocol

@Suite struct HTTPHeadersTests {
    let headers = HTTPHeaders([
        HTTPHeader("Connection", "keep-alive, Upgrade"), HTTPHeader("X-Dup", "one"), HTTPHeader("x-dup", "two"),
        HTTPHeader("Accept", " a ,, b\t, c ")
    ])

    @Test func caseInsensitiveLookup() {
        #expect(headers["connection"] == "keep-alive, Upgrade")
        #expect(headers["CONNECTION"] == "keep-alive, Upgrade")
        #expect(headers["X-DUP"] == "one")
        #expect(headers.values("x-dup") == ["one", "two"])
        #expect(headers["missing"] == nil)
        #expect(headers.values("missing") == [])
        #expect(headers["Connectio"] == nil)
    }

    @Test func tokens() {
        #expect(headers.containsToken("upgrade", in: "connection"))
        #expect(headers.containsToken("KEEP-ALIVE", in: "Connection"))
        #expect(!headers.containsToken("keep", in: "Connection"))
        #expect(!headers.containsToken("keep-alive, upgrade", in: "Connection"))
        #expect(headers.containsToken("two", in: "X-Dup"))
        #expect(headers.containsToken("b", in: "accept") && headers.containsToken("c", in: "accept"))
        #expect(!headers.containsToken("", in: "accept"))
        #expect(!headers.containsToken("upgrade", in: "Upgrade"))
    }

    @Test func appendAndIterate() {
        var h = HTTPHeaders()
        #expect(h.isEmpty)
        h.append(name: "A", value: "1")
        h.append(HTTPHeader("B", "2"))
        #expect(h.map(\.name) == ["A", "B"] && h.count == 2)
    }
}
