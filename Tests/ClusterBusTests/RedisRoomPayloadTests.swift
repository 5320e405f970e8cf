import ClusterBus
import Protocol
import Runtime
import Testing

@Suite struct RedisRoomPayloadTests {
    func decode(_ text: String) -> BusMessage? {
        Array(text.utf8).withUnsafeBytes { RedisRoomPayload.decode(room: "lobby", payload: $0) }
    }

    @Test func decodesWhatThePublishScriptSends() throws {
        let m = try #require(decode(#"{"offset":"18e2f1a0c3d4e5f6a7b8:1732871234567-3","data":{"text":"hi","n":[1,2]}}"#))
        #expect(m.room == "lobby")
        #expect(m.offset == StreamOffset(epoch: "18e2f1a0c3d4e5f6a7b8", milliseconds: 1_732_871_234_567, sequence: 3))
        #expect(m.data.description == #"{"text":"hi","n":[1,2]}"#)
        #expect(m.publishedAtMilliseconds == 1_732_871_234_567)
        let round = RedisRoomPayload.encode(offset: m.offset, data: m.data)
        #expect(round.withUnsafeBytes { RedisRoomPayload.decode(room: "lobby", payload: $0) }?.offset == m.offset)
        #expect(decode(#"{"offset":"a:1-0","data":7}"#)?.data.description == "7")
    }

    @Test func rejectsOtherShapes() {
        for bad in [
            "", "hello", #"{"offset":"","data":1}"#, #"{"offset":"xyz:1-0","data":1}"#, #"{"offset":"ab:1","data":1}"#,
            #"{"offset":"ab:1-","data":1}"#, #"{"offset":"ab:1-0","dat":1}"#, #"{"offset":"ab:1-0","data":}"#,
            #"{"offset":"ab:99999999999999999999999-0","data":1}"#, #"{"data":1,"offset":"ab:1-0"}"#
        ] {
            #expect(decode(bad) == nil, "\(bad)")
        }
    }

    @Test func parsesEntryIDs() {
        #expect(RedisRoomPayload.entryID("1-2".utf8) ?? (0, 0) == (1, 2))
        #expect(RedisRoomPayload.entryID("1-".utf8) == nil)
        #expect(RedisRoomPayload.entryID("-1".utf8) == nil)
        #expect(RedisRoomPayload.entryID("1-2x".utf8) == nil)
    }
}
