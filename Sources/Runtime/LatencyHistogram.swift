/// A Prometheus latency histogram with one writer (one gateway event loop, or the bus loop) and any number
/// of readers (the `/metrics` scrape). Each observation bumps one bucket's single-writer counter; the
/// cumulative `le` series are formed at scrape time, summed over the histograms given (e.g. one per loop).
public final class LatencyHistogram: Sendable {
    /// Bounds for gateway loop latencies (client publish to bus answer, bus accept to fan-out): 100 µs … 5 s.
    public static let loopBounds: [Double] = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5]
    /// Bounds for Redis round trips seen by the bus loop: 500 µs … 2.5 s.
    public static let busBounds: [Double] = [0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5]

    /// Upper bounds in seconds (the `le` labels, +Inf implied).
    public let bounds: [Double]
    private let boundsNanoseconds: [Int]
    private let buckets: [Counter]
    private let sumNanoseconds = Counter()

    /// - Parameter bounds: ascending upper bounds in seconds.
    public init(bounds: [Double]) {
        self.bounds = bounds
        boundsNanoseconds = bounds.map { Int(($0 * 1e9).rounded()) }
        buckets = (0...bounds.count).map { _ in Counter() }
    }

    /// Owning thread only. Negative values (clock skew between nodes) count as 0.
    public func observe(nanoseconds: Int) {
        let ns = max(0, nanoseconds)
        var i = 0
        while i < boundsNanoseconds.count && ns > boundsNanoseconds[i] { i += 1 }
        buckets[i].add()
        sumNanoseconds.add(ns)
    }

    /// Owning thread only.
    public func observe(microseconds: Int) { observe(nanoseconds: microseconds &* 1000) }

    /// Prometheus text exposition (0.0.4) of the sum of `histograms`, which share their bounds:
    /// HELP, TYPE, `{name}_bucket{le}` cumulative counts, `{name}_sum` in seconds and `{name}_count`.
    public static func exposition(name: String, help: String, _ histograms: [LatencyHistogram]) -> String {
        guard let first = histograms.first else { return "" }
        var out = "# HELP \(name) \(help)\n# TYPE \(name) histogram\n"
        var cumulative = 0
        for i in 0...first.bounds.count {
            cumulative += histograms.reduce(0) { $0 + $1.buckets[i].load() }
            let le = i < first.bounds.count ? String(first.bounds[i]) : "+Inf"
            out += "\(name)_bucket{le=\"\(le)\"} \(cumulative)\n"
        }
        let ns = histograms.reduce(0) { $0 + $1.sumNanoseconds.load() }
        out += "\(name)_sum \(Double(ns) / 1e9)\n\(name)_count \(cumulative)\n"
        return out
    }
}
