import Testing

@testable import Protocol

@Suite struct HTTPHeadScannerTests {
    /// Feeds pieces; returns the head bytes handed to `parse` and the absolute end of the head.
    func scan(_ pieces: [[UInt8]], maxHeadBytes: Int = 100, maxHeaderCount: Int = 3) throws(HTTPError) -> ([UInt8], Int)? {
        var scanner = HTTPHeadScanner(maxHeadBytes: maxHeadBytes, maxHeaderCount: maxHeaderCount)
        var offset = 0
        for piece in pieces {
            let result = try piece.withUnsafeBytes { raw in
                Result { () throws(HTTPError) in try scanner.feed(raw) { (head) throws(HTTPError) in Array(head) } }
            }.get()
            if let (head, consumed) = result {
                #expect(scanner.isIdle)
                return (head, offset + consumed)
            }
            offset += piece.count
        }
        return nil
    }

    @Test func handsOverTheHeadWithoutLeadingBlankLines() throws {
        let input = Array("\r\n\nA\r\nB: c\n\r\nrest".utf8)
        for pieces in allSplits(input) {
            let result = try scan(pieces)
            #expect(result?.0 == Array("A\r\nB: c\n\r\n".utf8))
            #expect(result?.1 == input.count - 4)
        }
    }

    @Test func limitsCountEveryByteAndLine() {
        #expect(throws: HTTPScannerError.tooLarge) { try scan([Array(repeating: 0x41, count: 100)]) }
        #expect(throws: Never.self) { try scan([Array(repeating: 0x41, count: 99)]) }
        #expect(throws: HTTPScannerError.tooMany) { try scan([Array("S\nA: 1\nB: 2\nC: 3\nD: 4\n".utf8)]) }
        #expect(throws: Never.self) { try scan([Array("S\nA: 1\nB: 2\nC: 3\n\n".utf8)]) }
    }
}

/// The scanner's two limit errors, for `#expect(throws:)`.
enum HTTPScannerError {
    static let tooLarge = HTTPHeadScanner.tooLarge
    static let tooMany = HTTPHeadScanner.tooManyHeaders
}
