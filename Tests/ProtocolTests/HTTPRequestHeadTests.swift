import Testing

@testable import Protocol

@Suite struct HTTPRequestHeadTests {
    @Test func pathAndQuery() {
        let head = HTTPRequestHead(method: "GET", target: "/ws?a=1&b=2")
        #expect(head.path == "/ws" && head.query == "a=1&b=2")
        let noQuery = HTTPRequestHead(method: "GET", target: "/ws")
        #expect(noQuery.path == "/ws" && noQuery.query == nil)
        let empty = HTTPRequestHead(method: "GET", target: "/ws?")
        #expect(empty.path == "/ws" && empty.query == "")
    }

    @Test func queryParameters() {
        let head = HTTPRequestHead(method: "GET", target: "/ws?token=a%2Bb%3D&name=J+Doe&flag&x=1&x=2&caf%C3%A9=%E2%82%AC&bad=%zz%4")
        #expect(head.queryParameter("token") == "a+b=")
        #expect(head.queryParameter("name") == "J Doe")
        #expect(head.queryParameter("flag") == "")
        #expect(head.queryParameter("x") == "1")
        #expect(head.queryParameter("café") == "€")
        #expect(head.queryParameter("bad") == "%zz%4")
        #expect(head.queryParameter("missing") == nil)
        #expect(head.queryParameter("Token") == nil)
        #expect(HTTPRequestHead(method: "GET", target: "/").queryParameter("a") == nil)
        #expect(HTTPRequestHead(method: "GET", target: "/?&&a=b&").queryParameter("a") == "b")
    }

    @Test func everyValueOfARepeatedParameterInOrderUpToTheLimit() {
        let head = HTTPRequestHead(method: "GET", target: "/ws?join=a&token=t&join=user%3A7&join&j%6Fin=c+d&join=e")
        #expect(head.queryParameters("join") == ["a", "user:7", "", "c d", "e"])
        #expect(head.queryParameters("join", limit: 2) == ["a", "user:7"])
        #expect(head.queryParameters("join", limit: 0).isEmpty)
        #expect(head.queryParameters("token") == ["t"])
        #expect(head.queryParameters("missing").isEmpty)
        #expect(HTTPRequestHead(method: "GET", target: "/ws").queryParameters("join").isEmpty)
    }
}
