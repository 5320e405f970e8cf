import Runtime

/// One room pattern from a token's `rooms` or `publish` claim (or the auth backend's answer).
///
/// Patterns and room names are split into segments at `:`. A pattern segment is:
/// - `*`: exactly one segment, any text (`stream:*` matches `stream:42`, not `stream:42:x` nor `stream`);
/// - `**`, last segment only: one or more remaining segments (`org:7:**`; a lone `**` allows every room);
/// - text containing `{sub}`: the token's subject substituted, then compared literally (`user:{sub}` is the
///   user's own room). A subject containing `:` never matches, so it cannot reach into another segment;
/// - anything else: compared literally, case-sensitively (`*` inside a segment, as in `a*`, is literal).
public struct RoomPattern: Sendable, Hashable, CustomStringConvertible {
    enum Segment: Sendable, Hashable {
        case literal(Substring)
        case any
        case rest
        /// The segment split at each `{sub}`.
        case template([Substring])
    }

    /// The pattern as configured.
    public let text: String
    let segments: [Segment]

    /// Compiles `text`; every string is a valid pattern (at worst one that matches a single literal room).
    public init(_ text: String) {
        self.text = text
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        var segs: [Segment] = []
        segs.reserveCapacity(parts.count)
        for (i, p) in parts.enumerated() {
            if p == "*" {
                segs.append(.any)
            } else if p == "**" && i == parts.count - 1 {
                segs.append(.rest)
            } else if Self.subRange(in: p) != nil {
                segs.append(.template(Self.splitTemplate(p)))
            } else {
                segs.append(.literal(p))
            }
        }
        segments = segs
    }

    private static func splitTemplate(_ s: Substring) -> [Substring] {
        var out: [Substring] = []
        var rest = s
        while let r = subRange(in: rest) {
            out.append(rest[..<r.lowerBound])
            rest = rest[r.upperBound...]
        }
        out.append(rest)
        return out
    }

    private static let subMarker = Array("{sub}".utf8)

    /// The first `{sub}` in `s`, by a byte scan (Foundation's `range(of:)` costs microseconds per call on Linux).
    private static func subRange(in s: Substring) -> Range<String.Index>? {
        let u = s.utf8
        var i = u.startIndex
        while i != u.endIndex {
            if u[i] == UInt8(ascii: "{") {
                var j = i
                var k = 0
                while k < subMarker.count, j != u.endIndex, u[j] == subMarker[k] {
                    j = u.index(after: j)
                    k += 1
                }
                if k == subMarker.count { return i..<j }
            }
            i = u.index(after: i)
        }
        return nil
    }

    /// Whether `room` matches for the user `user` (the `sub`).
    public func matches(_ room: String, user: String) -> Bool {
        var roomSegments = room.split(separator: ":", omittingEmptySubsequences: false)[...]
        for seg in segments {
            switch seg {
            case .rest:
                return !roomSegments.isEmpty
            case .any:
                guard roomSegments.popFirst() != nil else { return false }
            case .literal(let l):
                guard let r = roomSegments.popFirst(), r == l else { return false }
            case .template(let parts):
                guard let r = roomSegments.popFirst(), Self.templateMatches(parts, r, user: user) else { return false }
            }
        }
        return roomSegments.isEmpty
    }

    private static func templateMatches(_ parts: [Substring], _ segment: Substring, user: String) -> Bool {
        guard !user.isEmpty, !user.contains(":") else { return false }
        var expected = ""
        for (i, p) in parts.enumerated() {
            if i > 0 { expected += user }
            expected += p
        }
        return segment == expected[...]
    }

    /// The pattern text.
    public var description: String { text }
}

/// The patterns of one claim; a room is allowed when any pattern matches it. Empty allows nothing.
public struct RoomPatternSet: Sendable, Hashable {
    /// The compiled patterns, in claim order.
    public let patterns: [RoomPattern]

    /// Compiles each string of a claim.
    public init(_ patterns: [String]) { self.patterns = patterns.map(RoomPattern.init) }

    /// Whether some pattern matches `room` for `user`.
    public func allows(_ room: String, user: String) -> Bool {
        patterns.contains { $0.matches(room, user: user) }
    }
}

/// Who a connection is and what it may do: from a verified JWT (RFC 7519 `sub`, the rooms and publish claims,
/// `exp`) or from the auth backend's 200 answer (`user`, `rooms`, `publish`, `expires_at`). Immutable; one
/// cached backend result is shared by every connection of that token.
public final class AuthIdentity: Sendable {
    /// The user (`sub`), non-empty.
    public let user: String
    /// Rooms the user may join (and ask presence of).
    public let rooms: RoomPatternSet
    /// Rooms the user may publish to.
    public let publish: RoomPatternSet
    /// Unix time in seconds when the credential expires (`exp` / `expires_at`), nil for none.
    public let expiresAt: Double?
    /// Only joins, leaves and presence: no `rpc` nor `analytics` reach the application backend in this
    /// identity's name (the console's tickets, ConsoleTickets.swift: its user name is not a user of the app).
    public let tailOnly: Bool

    /// An identity for `user` with the given patterns and expiry (Unix seconds); `tailOnly`: see ``tailOnly``.
    public init(user: String, rooms: [String], publish: [String], expiresAt: Double?, tailOnly: Bool = false) {
        self.user = user
        self.rooms = RoomPatternSet(rooms)
        self.publish = RoomPatternSet(publish)
        self.expiresAt = expiresAt
        self.tailOnly = tailOnly
    }

    /// Whether the user may join `room`.
    public func mayJoin(_ room: String) -> Bool { rooms.allows(room, user: user) }
    /// Whether the user may publish to `room`.
    public func mayPublish(_ room: String) -> Bool { publish.allows(room, user: user) }
}
