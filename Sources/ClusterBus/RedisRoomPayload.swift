import Protocol
import Runtime

/// The payload the publish script sends on `{prefix}room:{room}`: `{"offset":"{epoch}:{ms}-{seq}","data":DATA}`,
/// DATA being the published JSON value verbatim (the script splices it in; see docs/redis.md).
///
/// Decoded once per node (not per member) by a fixed-shape scan, no JSON parser: the offset's text is
/// hex, digits and two separators, so the only variable part is DATA, copied once into a `JSONFragment`.
/// The wall-clock publish time is the entry ID's milliseconds (Redis's clock at `XADD`).
public enum RedisRoomPayload {
    static let head = Array(#"{"offset":""#.utf8)
    static let dataKey = Array(#"","data":"#.utf8)

    /// Encodes a payload (tests, tools; the publish script builds the same bytes in Lua).
    public static func encode(offset: StreamOffset, data: JSONFragment) -> [UInt8] {
        head + Array(offset.description.utf8) + dataKey + data.bytes + [UInt8(ascii: "}")]
    }

    /// Decodes a payload received on `room`'s channel; nil when it is not in this shape.
    public static func decode(room: String, payload: UnsafeRawBufferPointer) -> BusMessage? {
        let n = payload.count
        var i = head.count
        guard n > head.count + dataKey.count + 5 else { return nil }
        for k in 0..<head.count where payload[k] != head[k] { return nil }
        // epoch: 1...32 hex digits up to ':'
        let epochStart = i
        while i < n, payload[i] != UInt8(ascii: ":") {
            guard isHex(payload[i]) else { return nil }
            i += 1
        }
        let epochLength = i - epochStart
        guard i < n, (1...32).contains(epochLength) else { return nil }
        let epoch = String(decoding: UnsafeRawBufferPointer(rebasing: payload[epochStart..<i]), as: UTF8.self)
        i += 1
        guard let (ms, afterMs) = decimal(payload, from: i), afterMs < n, payload[afterMs] == UInt8(ascii: "-") else { return nil }
        guard let (seq, afterSeq) = decimal(payload, from: afterMs + 1) else { return nil }
        i = afterSeq
        guard n - i > dataKey.count else { return nil }
        for k in 0..<dataKey.count where payload[i + k] != dataKey[k] { return nil }
        i += dataKey.count
        guard payload[n - 1] == UInt8(ascii: "}"), n - 1 > i else { return nil }
        let data = JSONFragment(bytes: Array(UnsafeRawBufferPointer(rebasing: payload[i..<(n - 1)])))
        return BusMessage(
            room: room, offset: StreamOffset(epoch: epoch, milliseconds: ms, sequence: seq), data: data,
            publishedAtMilliseconds: ms)
    }

    /// Parses a stream entry ID `"{ms}-{seq}"`.
    public static func entryID(_ text: some Collection<UInt8>) -> (UInt64, UInt64)? {
        let bytes = Array(text)
        return bytes.withUnsafeBytes { p -> (UInt64, UInt64)? in
            guard let (ms, after) = decimal(p, from: 0), after < p.count, p[after] == UInt8(ascii: "-"),
                let (seq, end) = decimal(p, from: after + 1), end == p.count
            else { return nil }
            return (ms, seq)
        }
    }

    @inline(__always)
    static func isHex(_ b: UInt8) -> Bool {
        (b >= 0x30 && b <= 0x39) || (b >= 0x61 && b <= 0x66) || (b >= 0x41 && b <= 0x46)
    }

    /// 1...20 digits starting at `from`; returns the value and the index after the last digit.
    static func decimal(_ p: UnsafeRawBufferPointer, from start: Int) -> (UInt64, Int)? {
        var i = start
        var v: UInt64 = 0
        while i < p.count, p[i] >= 0x30, p[i] <= 0x39 {
            let (m, o1) = v.multipliedReportingOverflow(by: 10)
            let (s, o2) = m.addingReportingOverflow(UInt64(p[i] - 0x30))
            guard !o1, !o2 else { return nil }
            v = s
            i += 1
        }
        return i > start ? (v, i) : nil
    }
}
