import Protocol
import Runtime

/// The `read` script's answer (`RedisScripts.read`) for a join or a back-fill, decoded from its reply
/// `{epoch, lastID, recovered, entries}`; entries are `XRANGE` items `[id, [field, value, …]]` whose field
/// `d` holds the message data.
struct RedisReadResult {
    let epoch: String
    /// The room's latest offset (its last entry ID, or the last generated one when the stream is empty).
    let latest: StreamOffset
    let recovered: Bool
    let entries: [BusMessage]

    /// Decodes `reply` for `room`; nil when it does not have the script's shape.
    init?(room: String, reply: RedisReply) {
        guard let top = reply.array, top.count == 4, let epoch = top[0].text, let lastText = top[1].text,
            let (ms, seq) = RedisRoomPayload.entryID(lastText.utf8), let rec = top[2].int, let items = top[3].array
        else { return nil }
        self.epoch = epoch
        self.latest = StreamOffset(epoch: epoch, milliseconds: ms, sequence: seq)
        self.recovered = rec == 1
        var out: [BusMessage] = []
        out.reserveCapacity(items.count)
        for item in items {
            guard let m = RedisReadResult.entry(item, room: room, epoch: epoch) else { return nil }
            out.append(m)
        }
        self.entries = out
    }

    /// One `XRANGE` item as a message.
    static func entry(_ item: RedisReply, room: String, epoch: String) -> BusMessage? {
        guard let pair = item.array, pair.count == 2, case .string(let id) = pair[0], let fields = pair[1].array,
            let (ms, seq) = RedisRoomPayload.entryID(id)
        else { return nil }
        var i = 0
        while i + 1 < fields.count {
            if case .string(let name) = fields[i], name == [UInt8(ascii: "d")], case .string(let data) = fields[i + 1] {
                return BusMessage(
                    room: room, offset: StreamOffset(epoch: epoch, milliseconds: ms, sequence: seq),
                    data: JSONFragment(bytes: data), publishedAtMilliseconds: ms)
            }
            i += 2
        }
        return nil
    }
}

/// The publish script's answer `{epoch, entryID}` (stored now) or `{epoch, entryID, 1}` (a repeat of an
/// idempotency key: the first publish's offset) as an offset; nil for another shape.
func redisPublishedOffset(_ reply: RedisReply) -> (offset: StreamOffset, repeated: Bool)? {
    guard let a = reply.array, a.count == 2 || a.count == 3, let epoch = a[0].text, case .string(let id) = a[1],
        let (ms, seq) = RedisRoomPayload.entryID(id), !epoch.isEmpty
    else { return nil }
    return (StreamOffset(epoch: epoch, milliseconds: ms, sequence: seq), a.count == 3)
}
