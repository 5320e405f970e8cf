import Glibc
import Runtime

/// Fast, allocation-free field extraction for the two frames the bench sees at high rates: room messages
/// carrying the bench's own `data` (`{"t":…,"s":…,"p":…}`) and publish acks. Anything else goes through
/// `Envelope.decodeServer` (JSONSerialization), which is fine for the rare frames (hello, joined, error).
enum FrameScan {
    private static let messagePrefix = Array(#"{"op":"message""#.utf8)
    private static let ackPrefix = Array(#"{"op":"ack","id":"#.utf8)
    private static let dataKey = Array(#""data":{"#.utf8)
    private static let tKey = Array(#""t":"#.utf8)
    private static let sKey = Array(#""s":"#.utf8)

    static func hasPrefix(_ text: UnsafeRawBufferPointer, _ prefix: [UInt8]) -> Bool {
        guard text.count >= prefix.count else { return false }
        return prefix.withUnsafeBytes { memcmp(text.baseAddress!, $0.baseAddress!, prefix.count) == 0 }
    }

    static func isMessage(_ text: UnsafeRawBufferPointer) -> Bool { hasPrefix(text, messagePrefix) }

    /// Send time (monotonic ns) and sequence number of a bench-published room message; nil when the frame
    /// is not a message or its data is not the bench's. The gateway may re-serialize `data` (it sorts the
    /// keys today), so `t` and `s` are looked up anywhere inside it; the padding `p` holds only `x`s.
    static func benchMessage(_ text: UnsafeRawBufferPointer) -> (t: UInt64, s: Int)? {
        guard hasPrefix(text, messagePrefix), let d = find(dataKey, in: text, from: messagePrefix.count) else { return nil }
        return benchFields(text, from: d + dataKey.count)
    }

    /// Send time and sequence number of a frame that is the bench's `data` object itself, as servers without
    /// an envelope deliver it (nchan sends the published body as the frame: `{"t":…,"s":…,"p":"…"}`); nil
    /// for anything else.
    static func benchPayload(_ text: UnsafeRawBufferPointer) -> (t: UInt64, s: Int)? {
        guard text.count > 1, text[0] == UInt8(ascii: "{") else { return nil }
        return benchFields(text, from: 1)
    }

    /// `t` and `s` of a bench data object whose fields start at `from`.
    private static func benchFields(_ text: UnsafeRawBufferPointer, from: Int) -> (t: UInt64, s: Int)? {
        guard let ti = find(tKey, in: text, from: from), let si = find(sKey, in: text, from: from) else { return nil }
        var i = ti + tKey.count
        guard let t = digits(text, &i) else { return nil }
        i = si + sKey.count
        guard let s = digits(text, &i) else { return nil }
        return (t, Int(s))
    }

    /// The numeric id of `{"op":"ack","id":N,…}`; nil for anything else.
    static func ackID(_ text: UnsafeRawBufferPointer) -> Int? {
        guard hasPrefix(text, ackPrefix) else { return nil }
        var i = ackPrefix.count
        return digits(text, &i).map { Int($0) }
    }

    /// Offset of the first occurrence of `needle` in `text` at or after `from`.
    private static func find(_ needle: [UInt8], in text: UnsafeRawBufferPointer, from: Int) -> Int? {
        let first = needle[0]
        return needle.withUnsafeBytes { n -> Int? in
            var i = from
            let last = text.count - n.count
            while i <= last {
                if text[i] == first && memcmp(text.baseAddress! + i, n.baseAddress!, n.count) == 0 { return i }
                i += 1
            }
            return nil
        }
    }

    @inline(__always)
    private static func digits(_ text: UnsafeRawBufferPointer, _ i: inout Int) -> UInt64? {
        var v: UInt64 = 0
        let start = i
        while i < text.count {
            let d = text[i] &- 0x30
            if d > 9 { break }
            v = v &* 10 &+ UInt64(d)
            i += 1
        }
        return i > start && i - start <= 19 ? v : nil
    }
}
