import Testing

@testable import Protocol

@Suite struct OpcodeTests {
    @Test func wireValues() {
        #expect(Opcode.continuation.rawValue == 0x0)
        #expect(Opcode.text.rawValue == 0x1)
        #expect(Opcode.binary.rawValue == 0x2)
        #expect(Opcode.close.rawValue == 0x8)
        #expect(Opcode.ping.rawValue == 0x9)
        #expect(Opcode.pong.rawValue == 0xA)
    }

    @Test func classification() {
        let control = (0...15).filter { Opcode(rawValue: UInt8($0)).isControl }
        #expect(control == Array(8...15))
        let reserved = (0...15).filter { Opcode(rawValue: UInt8($0)).isReserved }
        #expect(reserved == [3, 4, 5, 6, 7, 11, 12, 13, 14, 15])
    }

    @Test func description() {
        #expect(Opcode.text.description == "text")
        #expect(Opcode(rawValue: 0xB).description == "opcode(0xB)")
    }
}
