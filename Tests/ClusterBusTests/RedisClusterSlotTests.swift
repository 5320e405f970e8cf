import ClusterBus
import Testing

/// The slot function against known vectors: the CRC's check value and `CLUSTER KEYSLOT` answers of
/// Debian's redis-server 7.0.15 in cluster mode (hash tags included).
@Suite struct RedisClusterSlotTests {
    @Test func crc16CheckValue() {
        #expect(RedisClusterSlot.crc16(Array("123456789".utf8)[...]) == 0x31C3)
        #expect(RedisClusterSlot.crc16([][...]) == 0)
    }

    @Test(arguments: [
        ("123456789", 12739), ("foo", 12182), ("bar", 5061), ("hello", 866), ("somekey", 11058),
        ("{user1000}.following", 3443), ("foo{}{bar}", 8363), ("foo{{bar}}zap", 4015), ("foo{bar}{zap}", 5061),
        ("sb:history:{lobby}", 10294), ("lobby", 10294), ("", 0), ("a{b}c", 3300)
    ])
    func matchesRedisKeyslot(key: String, slot: Int) {
        #expect(RedisClusterSlot.slot(of: key) == slot)
    }

    @Test func everyKeyOfARoomSharesItsSlot() {
        let keys = RedisClusterKeys(prefix: "sb:", nodeID: "n1")
        for room in ["lobby", "a}b", "}x", "{", "%41", "x{y}z", "chat.room-7"] {
            let slot = keys.slot(ofRoom: room)
            for key in [
                keys.history(room), keys.meta(room), keys.roomChannel(room), keys.presence(room),
                keys.presenceUsers(room, node: "n1"), keys.idempotency(room, key: "k{1}")
            ] {
                #expect(RedisClusterSlot.slot(of: key) == slot, "\(key) of room \(room)")
            }
            #expect(keys.room(ofChannel: keys.roomChannel(room)) == room)
        }
        #expect(keys.roomChannel("{") != keys.roomChannel("%7b"), "escaped tags never collide with plain room names")
        #expect(keys.history("%41") != keys.history("A"))
    }
}
