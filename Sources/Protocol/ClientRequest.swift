/// One decoded client -> server frame of Switchboard's client protocol (see ``Envelope``).
public enum ClientRequest: Equatable, Sendable {
    /// `{"op":"auth","token":"…"}`: authenticate the connection.
    case auth(token: String)
    /// `{"op":"join","room":"…","since":"…"?}`: join a room; `since` is the last offset seen, to recover missed messages.
    case join(room: String, since: String?)
    /// `{"op":"leave","room":"…"}`.
    case leave(room: String)
    /// `{"op":"publish","room":"…","data":…,"id":…?}`: `data` any JSON value; id: a JSON string or number, echoed verbatim in ack.
    case publish(room: String, data: JSONFragment, id: JSONFragment?)
    /// `{"op":"presence","room":"…"}`: ask for the room's member count.
    case presence(room: String)
    /// `{"op":"analytics","event":"…","data":…?,"room":…?}`: a fire-and-forget client event; `room` (optional)
    /// says which room it concerns and is recorded with it.
    case analytics(event: String, data: JSONFragment?, room: String? = nil)
    /// `{"op":"rpc","method":"…","data":…?,"id":…}`: a call forwarded to the application backend
    /// (`--proxy-url`); answered with `rpc_result` carrying the same `id` (required).
    case rpc(method: String, data: JSONFragment?)
}
