import Runtime

/// The position of a message in a room's history: the history's epoch plus a stream entry ID.
///
/// Text form (opaque to clients, stable across nodes): `"{epoch}:{ms}-{seq}"`, e.g. `"9f3a61c2:1732871234567-0"`.
/// `ms-seq` is a Redis stream entry ID; the epoch is a random value created with the history, so offsets
/// from a history that was reset (Redis restarted without persistence, key evicted) never compare as
/// continuous with the new one. Ordering is defined only between offsets of the same epoch.
public struct StreamOffset: Hashable, Sendable, CustomStringConvertible {
    /// Random identifier of the history instance (hex, 1...32 characters).
    public let epoch: String
    /// Stream entry ID milliseconds part.
    public let milliseconds: UInt64
    /// Stream entry ID sequence part.
    public let sequence: UInt64

    public init(epoch: String, milliseconds: UInt64, sequence: UInt64) {
        self.epoch = epoch
        self.milliseconds = milliseconds
        self.sequence = sequence
    }

    /// Parses the text form; nil when malformed.
    public init?(_ text: String) {
        guard let colon = text.firstIndex(of: ":") else { return nil }
        let epoch = text[..<colon]
        let id = text[text.index(after: colon)...]
        guard !epoch.isEmpty, epoch.count <= 32, epoch.allSatisfy({ $0.isHexDigit }),
            let dash = id.firstIndex(of: "-"),
            let ms = UInt64(id[..<dash]), let seq = UInt64(id[id.index(after: dash)...])
        else { return nil }
        self.init(epoch: String(epoch), milliseconds: ms, sequence: seq)
    }

    /// The Redis stream entry ID, `"{ms}-{seq}"`.
    public var entryID: String { "\(milliseconds)-\(sequence)" }

    public var description: String { "\(epoch):\(milliseconds)-\(sequence)" }

    /// Entry-ID order; only meaningful for the same epoch.
    public func isAfter(_ other: StreamOffset) -> Bool {
        (milliseconds, sequence) > (other.milliseconds, other.sequence)
    }

    /// True when a receiver that already has everything up to `floor` has this message too: same epoch and
    /// not after `floor`. An offset of another epoch is never covered (the history was reset; it is new).
    /// The one de-duplication rule of the resume seam (bus delivery cursor, fan-out floors, join replays).
    public func isCovered(by floor: StreamOffset) -> Bool {
        epoch == floor.epoch && !isAfter(floor)
    }
}
