import Protocol

/// Joins named in the upgrade URL of the room protocol: `GET /ws?join=lobby&join=user%3A7` joins each room
/// right after `hello`, as a `join` op without `since` would, and answers `joined` (or an error) for each.
/// A reconnecting client thereby gets its rooms back in the handshake's round trip instead of one more
/// (docs/protocol.md, "Joining in the upgrade URL").
extension Connection {
    /// The rooms of the request's `join` query parameters, percent-decoded; empty when there are none.
    ///
    /// - Throws: a 400 ``HTTPError`` when a value is not a valid room name (``Envelope/isValidRoomName(_:)``)
    ///   or names more rooms than `maxRooms` (`--max-rooms-per-connection`), so a bad URL fails the upgrade
    ///   instead of opening a connection that is refused room by room.
    static func urlJoinRooms(_ head: HTTPRequestHead, maxRooms: Int) throws(HTTPError) -> [String] {
        guard head.query != nil else { return [] }
        // One more than allowed, to tell "too many" without decoding an attacker's thousands.
        let rooms = head.queryParameters("join", limit: maxRooms + 1)
        guard rooms.count <= maxRooms else {
            throw HTTPError(status: .badRequest, reason: "query parameter 'join' names more than \(maxRooms) rooms (--max-rooms-per-connection)")
        }
        for room in rooms where !Envelope.isValidRoomName(room) {
            throw HTTPError(
                status: .badRequest,
                reason: "query parameter 'join' must name a room: 1-200 printable ASCII characters without space, quote or backslash")
        }
        return rooms
    }

    /// Joins `rooms` after `hello`, each through the same authorization and answer as a `join` op (no `id`):
    /// `forbidden` for a room the token does not allow, `unauthorized` while an `auth` op is still awaited.
    func joinURLRooms(_ rooms: [String]) {
        for room in rooms {
            guard phase == .open else { return }
            let request = ClientRequest.join(room: room, since: nil)
            guard authorize(request, id: nil) else { continue }
            joinRoom(room, since: nil, origin: .envelope(id: nil))
        }
    }
}
