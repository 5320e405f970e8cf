import Testing

@testable import Protocol

@Suite struct HTTPStatusTests {
    @Test func codesAndPhrases() {
        let expected: [(HTTPStatus, Int, String)] = [
            (.ok, 200, "OK"), (.accepted, 202, "Accepted"), (.switchingProtocols, 101, "Switching Protocols"),
            (.badRequest, 400, "Bad Request"), (.unauthorized, 401, "Unauthorized"), (.forbidden, 403, "Forbidden"),
            (.notFound, 404, "Not Found"), (.methodNotAllowed, 405, "Method Not Allowed"),
            (.payloadTooLarge, 413, "Payload Too Large"), (.upgradeRequired, 426, "Upgrade Required"),
            (.tooManyRequests, 429, "Too Many Requests"), (.requestHeaderFieldsTooLarge, 431, "Request Header Fields Too Large"),
            (.internalServerError, 500, "Internal Server Error"), (.serviceUnavailable, 503, "Service Unavailable")
        ]
        for (status, code, phrase) in expected {
            #expect(status.rawValue == code)
            #expect(status.reasonPhrase == phrase)
        }
        #expect(HTTPStatus(rawValue: 599).reasonPhrase == "Unknown")
        #expect(HTTPStatus.notFound.description == "404 Not Found")
    }
}
