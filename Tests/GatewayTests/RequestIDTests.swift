import Testing

@testable import Gateway

/// X-Request-IDs: 16 lowercase hex digits, from a pool refilled 32 words at a time (issue 17: no syscall per handshake).
@Suite struct RequestIDTests {
    @Test func hex16PadsAndOrdersDigits() {
        #expect(RequestID.hex16(0) == "0000000000000000")
        #expect(RequestID.hex16(0xAB) == "00000000000000ab")
        #expect(RequestID.hex16(0x0123_4567_89AB_CDEF) == "0123456789abcdef")
        #expect(RequestID.hex16(UInt64.max) == "ffffffffffffffff")
    }

    @Test func poolGivesDistinctWellFormedIDsAcrossRefills() {
        var pool = RequestIDPool()
        let ids = (0..<100).map { _ in pool.next() }  // three refills and a bit
        #expect(Set(ids).count == 100)
        #expect(ids.allSatisfy { $0.utf8.count == 16 && $0.utf8.allSatisfy { ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x61 && $0 <= 0x66) } })
        #expect(RequestID.from(ids[0]) == ids[0], "a generated ID is one a proxy may pass on")
    }
}

/// Level checks run several times per handshake; their order is the filter's whole meaning.
@Suite struct LogLevelOrderTests {
    @Test func levelsOrderDebugInfoWarnError() {
        let all: [LogLevel] = [.debug, .info, .warn, .error]
        for (i, a) in all.enumerated() {
            for (j, b) in all.enumerated() { #expect((a < b) == (i < j), "\(a) < \(b)") }
        }
        let logger = Logger(level: .warn, node: "n")
        #expect(!logger.isEnabled(.info) && logger.isEnabled(.warn) && logger.isEnabled(.error))
    }
}
