import ClusterBus
import Runtime
import Testing

@Suite struct RedisCommandTests {
    @Test func encodesRESPArraysOfBulkStrings() {
        let c = RedisCommand(["SET", "k", "v"])
        #expect(String(decoding: c.bytes, as: UTF8.self) == "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n")
        #expect(c.isComplete && c.name == "SET")
    }

    @Test func isBinarySafeAndCountsBytesNotCharacters() {
        var c = RedisCommand("PUBLISH", argumentCount: 3)
        c.append("ch")
        #expect(!c.isComplete)
        c.append([0x00, 0x0D, 0x0A, 0xFF])
        #expect(String(decoding: c.bytes.suffix(10), as: UTF8.self).hasPrefix("$4\r\n"))
        #expect(Array(c.bytes.suffix(6)) == [0x00, 0x0D, 0x0A, 0xFF, 0x0D, 0x0A])
        var d = RedisCommand("X", argumentCount: 3)
        d.append("é")
        d.append(-12)
        #expect(String(decoding: d.bytes, as: UTF8.self) == "*3\r\n$1\r\nX\r\n$2\r\né\r\n$3\r\n-12\r\n")
    }
}
