import Testing

@testable import Protocol

@Suite struct HTTPErrorTests {
    @Test func valueSemantics() {
        let error = HTTPError(status: .badRequest, reason: "missing Host header")
        #expect(error.description == "400 Bad Request: missing Host header")
        #expect(error.headers.isEmpty)
        #expect(error != HTTPError(status: .badRequest, reason: "missing Host header", headers: [HTTPHeader("A", "b")]))
    }
}
