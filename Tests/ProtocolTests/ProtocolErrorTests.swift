import Testing

@testable import Protocol

@Suite struct ProtocolErrorTests {
    @Test func closeCodes() {
        let protocolErrors: [ProtocolError] = [
            .unmaskedClientFrame, .maskedServerFrame, .reservedBitsSet, .reservedOpcode(3), .payloadLengthTopBitSet,
            .controlFrameTooLong, .fragmentedControlFrame, .unexpectedContinuation, .expectedContinuation,
            .invalidCloseCode(1005), .invalidClosePayload
        ]
        for error in protocolErrors { #expect(error.closeCode == .protocolError, "\(error)") }
        #expect(ProtocolError.invalidUTF8.closeCode == .invalidPayloadData)
        #expect(ProtocolError.messageTooLarge(limit: 10).closeCode == .messageTooBig)
    }

    @Test func descriptionsFitInACloseReason() {
        let all: [ProtocolError] = [.reservedOpcode(0xB), .messageTooLarge(limit: 1 << 20), .invalidCloseCode(65535)]
        for error in all { #expect(FrameEncoder.closePayload(code: error.closeCode, reason: error.description).count <= 125) }
        #expect(ProtocolError.reservedOpcode(0xB).description == "reserved opcode 0xb")
    }
}
