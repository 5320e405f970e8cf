import ClusterBus
import Protocol
import Runtime

/// A plain join waiting for its room's bus read on this loop (``JoinOffsetCache``).
struct PlainJoinWaiter {
    let connection: Connection
    /// Who asked, so `joined` (or the refusal) is answered in its protocol with its `id` / ack id.
    let origin: RoomOpOrigin
    /// The join made the connection a member (not a repeated join): a refusal takes it out of the room again.
    let fresh: Bool
}

extension Connection {
    /// Answers a join without `since` (or a repeated join) of `room`, which this connection is already a
    /// member of on this loop: from the loop room's newest offset when the bus confirmed it, else with one bus
    /// read shared by every plain join of the room on this loop until it answers (``JoinOffsetCache``).
    func answerPlainJoin(room: String, origin: RoomOpOrigin, fresh: Bool) {
        guard let r = loop.rooms[room] else { return }
        let ttl = loop.config.historyTTLMs
        let decision = r.joinOffsets.plainJoin(
            PlainJoinWaiter(connection: self, origin: origin, fresh: fresh), now: now, haveOffset: r.lastOffset != nil,
            isBusUp: loop.node.hub.busState.load(ordering: .relaxed),
            maxAgeMilliseconds: ttl > 0 ? UInt64(max(1, ttl / 2)) : 0)
        switch decision {
        case .answer:
            answerJoined(origin, room: room, offset: r.lastOffset!, recovered: false)
        case .wait:
            return
        case .ask:
            let loopRef = loop
            let asked = r.joinOffsets.askToken
            loop.node.rooms.join(room: room, since: nil) { result in
                loopRef.onLoop {
                    // Everyone left meanwhile: a later join made a new loop room, which asks for itself.
                    guard let r = loopRef.rooms[room], r.joinOffsets.asking, r.joinOffsets.askToken == asked else { return }
                    switch result {
                    case .success(let j):
                        r.noteOffset(j.offset)
                        for w in r.joinOffsets.answered(now: loopRef.loop.now) {
                            let c = w.connection
                            guard c.phase == .open, c.roomSlots[room] != nil else { continue }
                            c.answerJoined(w.origin, room: room, offset: j.offset, recovered: false)
                        }
                    case .failure:
                        // A repeated join's member stays (as before: no answer); a new one is taken out again.
                        for w in r.joinOffsets.failed() where w.fresh {
                            let c = w.connection
                            guard c.phase == .open, c.roomSlots[room] != nil else { continue }
                            loopRef.leave(c, room: room)
                            c.answerRoomError(w.origin, .unavailable, "cannot join '\(room)': the bus is down")
                        }
                    }
                }
            }
        }
    }
}
