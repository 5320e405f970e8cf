import ClusterBus
import Runtime
import Testing

@Suite struct RedisKeysTests {
    @Test func namesFollowTheDocumentedLayout() {
        let k = RedisKeys(prefix: "sb:", nodeID: "gw-1")
        #expect(k.roomChannel("lobby") == "sb:room:lobby")
        #expect(k.history("lobby") == "sb:history:lobby" && k.meta("lobby") == "sb:meta:lobby")
        #expect(k.presence("lobby") == "sb:presence:lobby")
        #expect(k.node("gw-1") == "sb:node:gw-1" && k.nodeRooms("gw-1") == "sb:node-rooms:gw-1" && k.nodes == "sb:nodes")
        #expect(k.controlChannel == "sb:ctl" && k.ownControlChannel == "sb:ctl:gw-1")
        #expect(k.room(ofChannel: "sb:room:a:b") == "a:b")
        #expect(k.room(ofChannel: "sb:ctl") == nil)
    }
}
