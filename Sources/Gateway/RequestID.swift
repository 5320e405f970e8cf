/// Request IDs carried by every log line of a connection and echoed as `X-Request-ID` in the 101.
enum RequestID {
    /// A proxy-supplied ID if it is 1...128 safe characters, else nil.
    static func from(_ value: String?) -> String? {
        guard let v = value, !v.isEmpty, v.utf8.count <= 128,
              v.utf8.allSatisfy({ ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x41 && $0 <= 0x5A) || ($0 >= 0x61 && $0 <= 0x7A) || $0 == 0x2D || $0 == 0x5F || $0 == 0x2E })
        else { return nil }
        return v
    }

    /// 16 random hex characters.
    static func generate() -> String {
        let v = UInt64.random(in: 0...UInt64.max)
        let s = String(v, radix: 16)
        return String(repeating: "0", count: 16 - s.count) + s
    }
}
