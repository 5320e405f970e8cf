import Testing

@testable import Protocol

@Suite struct ErrorCodeTests {
    @Test func rawValues() {
        let expected: [(ErrorCode, String)] = [
            (.badRequest, "bad_request"), (.unknownOp, "unknown_op"), (.invalidRoom, "invalid_room"), (.notJoined, "not_joined"),
            (.forbidden, "forbidden"), (.unavailable, "unavailable"), (.unknown, "unknown"), (.tooManyRooms, "too_many_rooms"), (.throttled, "throttled"),
            (.tokenExpired, "token_expired"), (.unauthorized, "unauthorized"), (.internal, "internal")
        ]
        for (code, raw) in expected { #expect(code.rawValue == raw && code.description == raw) }
    }

    @Test func errorValues() {
        #expect(EnvelopeError(code: .forbidden, message: "no") == EnvelopeError(code: .forbidden, message: "no", id: nil))
    }
}
