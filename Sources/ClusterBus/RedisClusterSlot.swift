/// Redis Cluster's key → slot function (Redis Cluster specification, "Keys distribution model"):
/// `CRC16(key) mod 16384` with CRC16-CCITT/XMODEM (polynomial 0x1021, initial 0, no reflection), where
/// only the hash tag is hashed when the key has one: the bytes between the first `{` and the first `}` after
/// it, if that is not empty. Channels of `SSUBSCRIBE`/`SPUBLISH` hash the same way.
public enum RedisClusterSlot {
    /// Slots in a Redis Cluster.
    public static let count = 16384

    /// The slot (0..<16384) of `key` (bytes, binary-safe).
    public static func slot(of key: some Collection<UInt8>) -> Int {
        let bytes = Array(key)
        if let open = bytes.firstIndex(of: UInt8(ascii: "{")),
            let close = bytes[(open + 1)...].firstIndex(of: UInt8(ascii: "}")), close > open + 1
        {
            return Int(crc16(bytes[(open + 1)..<close]) & 0x3FFF)
        }
        return Int(crc16(bytes[...]) & 0x3FFF)
    }

    /// The slot of `key` given as text.
    public static func slot(of key: String) -> Int { slot(of: key.utf8) }

    /// CRC16-CCITT (XMODEM): `crc16("123456789") == 0x31C3`.
    public static func crc16(_ bytes: ArraySlice<UInt8>) -> UInt16 {
        var crc: UInt16 = 0
        for b in bytes { crc = (crc << 8) ^ table[Int(UInt8(truncatingIfNeeded: crc >> 8) ^ b)] }
        return crc
    }

    private static let table: [UInt16] = (0..<256).map { i in
        var c = UInt16(i) << 8
        for _ in 0..<8 { c = c & 0x8000 != 0 ? (c << 1) ^ 0x1021 : c << 1 }
        return c
    }
}
