import Testing

@testable import Protocol

@Suite struct CloseCodeTests {
    @Test func values() {
        #expect(CloseCode.normalClosure.rawValue == 1000)
        #expect(CloseCode.goingAway.rawValue == 1001)
        #expect(CloseCode.protocolError.rawValue == 1002)
        #expect(CloseCode.unsupportedData.rawValue == 1003)
        #expect(CloseCode.invalidPayloadData.rawValue == 1007)
        #expect(CloseCode.policyViolation.rawValue == 1008)
        #expect(CloseCode.messageTooBig.rawValue == 1009)
        #expect(CloseCode.internalError.rawValue == 1011)
        #expect(CloseCode.serviceRestart.rawValue == 1012)
        #expect(CloseCode.tryAgainLater.rawValue == 1013)
        #expect(CloseCode.authTimeout.rawValue == 4001)
        #expect(CloseCode.authFailed.rawValue == 4002)
        #expect(CloseCode.tokenExpired.rawValue == 4003)
    }

    /// Every class of §7.4: the whole 16-bit range, checked against the rule written out.
    @Test func validOnWireAcrossTheWholeRange() {
        for raw in 0...UInt16.max {
            let expected = (1000...1003).contains(raw) || (1007...1014).contains(raw) || (3000...4999).contains(raw)
            #expect(CloseCode(rawValue: raw).isValidOnWire == expected, "code \(raw)")
        }
    }

    @Test(arguments: [0, 999, 1004, 1005, 1006, 1015, 1016, 2000, 2999, 5000, 65535] as [UInt16])
    func invalidCodes(raw: UInt16) {
        #expect(!CloseCode(rawValue: raw).isValidOnWire)
    }

    @Test(arguments: [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 3999, 4000, 4001, 4999] as [UInt16])
    func validCodes(raw: UInt16) {
        #expect(CloseCode(rawValue: raw).isValidOnWire)
    }

    @Test func description() {
        #expect(CloseCode.normalClosure.description == "1000 normalClosure")
        #expect(CloseCode(rawValue: 3001).description == "3001")
    }
}
