import COpenSSL

/// Request IDs carried by every log line of a connection and echoed as `X-Request-ID` in the 101.
enum RequestID {
    /// A proxy-supplied ID if it is 1...128 safe characters, else nil.
    static func from(_ value: String?) -> String? {
        guard let v = value, !v.isEmpty, v.utf8.count <= 128,
            v.utf8.allSatisfy({
                ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x41 && $0 <= 0x5A) || ($0 >= 0x61 && $0 <= 0x7A) || $0 == 0x2D || $0 == 0x5F || $0 == 0x2E
            })
        else { return nil }
        return v
    }

    /// 16 random hex characters (one `getrandom(2)` per call: use a ``RequestIDPool`` on hot paths).
    static func generate() -> String {
        hex16(UInt64.random(in: 0...UInt64.max))
    }

    /// `v` as 16 lowercase hex digits, zero-padded.
    static func hex16(_ v: UInt64) -> String {
        let digits: StaticString = "0123456789abcdef"
        return String(unsafeUninitializedCapacity: 16) { out in
            for i in 0..<16 { out[i] = digits.utf8Start[Int((v >> UInt64(60 - 4 * i)) & 0xF)] }
            return 16
        }
    }
}

/// Request IDs for one event loop, drawn from 32 random words fetched at a time with OpenSSL's DRBG
/// (`RAND_bytes`): one call (and the `getpid` it makes to detect a fork) per 32 handshakes, where
/// ``RequestID/generate()`` costs a `getrandom(2)` each (one of ~8 syscalls per handshake). Loop-confined.
struct RequestIDPool {
    private var words = [UInt64](repeating: 0, count: 32)
    private var used = 32

    /// The next ID: 16 random lowercase hex characters.
    mutating func next() -> String {
        if used == words.count {
            let ok = words.withUnsafeMutableBytes { RAND_bytes($0.baseAddress!.assumingMemoryBound(to: UInt8.self), CInt($0.count)) }
            // The DRBG failed (it cannot seed): the standard library's getrandom instead.
            if ok != 1 { for i in words.indices { words[i] = UInt64.random(in: 0...UInt64.max) } }
            used = 0
        }
        defer { used += 1 }
        return RequestID.hex16(words[used])
    }
}
