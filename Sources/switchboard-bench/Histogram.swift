import Runtime

/// The bench's one percentile helper: a log-linear histogram of nanosecond values (HDR-style, 8 significant
/// bits: every value is kept within 0.4 % of what was recorded), mergeable across members and processes.
///
/// Fixed memory (about 60 KiB), O(1) record, so millions of samples cost nothing extra.
struct Histogram: Sendable, Codable {
    private static let bits = 8
    private static let half = 1 << (bits - 1)  // 128
    private static let bucketCount = (64 - bits + 1) * half + half

    private var counts: [UInt64]
    private(set) var count: UInt64 = 0
    private(set) var sum: Double = 0
    private(set) var min: UInt64 = .max
    private(set) var max: UInt64 = 0

    init() { counts = Array(repeating: 0, count: Histogram.bucketCount) }

    @inline(__always)
    static func index(_ v: UInt64) -> Int {
        let m = 64 - v.leadingZeroBitCount
        if m <= bits { return Int(v) }
        let shift = m - bits
        return shift * half + Int(v >> UInt64(shift))
    }

    /// Midpoint of the bucket's value range.
    static func value(at index: Int) -> UInt64 {
        if index < 2 * half { return UInt64(index) }
        let shift = index / half - 1
        let mantissa = UInt64(index - shift * half)
        let low = mantissa << UInt64(shift)
        return low + (UInt64(1) << UInt64(shift)) / 2
    }

    @inline(__always)
    mutating func record(_ v: UInt64) {
        counts[Histogram.index(v)] &+= 1
        count &+= 1
        sum += Double(v)
        if v < min { min = v }
        if v > max { max = v }
    }

    mutating func merge(_ other: Histogram) {
        for i in 0..<counts.count where other.counts[i] != 0 { counts[i] &+= other.counts[i] }
        count &+= other.count
        sum += other.sum
        min = Swift.min(min, other.min)
        max = Swift.max(max, other.max)
    }

    mutating func reset() { self = Histogram() }

    /// The value at percentile `p` (0...100), nearest-rank; 0 when empty.
    func percentile(_ p: Double) -> UInt64 {
        guard count > 0 else { return 0 }
        if p >= 100 { return max }
        let rank = Swift.max(1, UInt64((p / 100 * Double(count)).rounded(.up)))
        var seen: UInt64 = 0
        for i in 0..<counts.count where counts[i] != 0 {
            seen += counts[i]
            if seen >= rank { return Swift.min(Swift.max(Histogram.value(at: i), min), max) }
        }
        return max
    }

    var mean: Double { count == 0 ? 0 : sum / Double(count) }

    // Sparse coding for the child-process pipe: [[index, count], ...].
    private enum CodingKeys: String, CodingKey { case buckets, count, sum, min, max }

    init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        counts = Array(repeating: 0, count: Histogram.bucketCount)
        for pair in try c.decode([[UInt64]].self, forKey: .buckets) where pair.count == 2 && Int(pair[0]) < counts.count {
            counts[Int(pair[0])] = pair[1]
        }
        count = try c.decode(UInt64.self, forKey: .count)
        sum = try c.decode(Double.self, forKey: .sum)
        min = try c.decode(UInt64.self, forKey: .min)
        max = try c.decode(UInt64.self, forKey: .max)
    }

    func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        var sparse: [[UInt64]] = []
        for i in 0..<counts.count where counts[i] != 0 { sparse.append([UInt64(i), counts[i]]) }
        try c.encode(sparse, forKey: .buckets)
        try c.encode(count, forKey: .count)
        try c.encode(sum, forKey: .sum)
        try c.encode(min, forKey: .min)
        try c.encode(max, forKey: .max)
    }
}

extension Histogram {
    /// Adds `name_p50_ms`, `name_p99_ms`, `name_p999_ms`, `name_max_ms` and `name_samples` to `report`.
    func addLatencies(to report: inout Report, name: String) {
        let ms = { (v: UInt64) in Double(v) / 1e6 }
        report.add("\(name)_samples", Int(count))
        report.add("\(name)_p50_ms", ms(percentile(50)), unit: "ms", decimals: 3)
        report.add("\(name)_p99_ms", ms(percentile(99)), unit: "ms", decimals: 3)
        report.add("\(name)_p999_ms", ms(percentile(99.9)), unit: "ms", decimals: 3)
        report.add("\(name)_max_ms", ms(count == 0 ? 0 : max), unit: "ms", decimals: 3)
    }
}
