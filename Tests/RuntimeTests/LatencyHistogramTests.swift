import Runtime
import Testing

@Suite struct LatencyHistogramTests {
    @Test func bucketsAreCumulativeInclusiveAndSummedOverHistograms() {
        let a = LatencyHistogram(bounds: [0.001, 0.01])
        let b = LatencyHistogram(bounds: [0.001, 0.01])
        a.observe(nanoseconds: 1_000_000)  // exactly 1 ms: le="0.001" (upper bounds are inclusive)
        a.observe(microseconds: 1001)  // just above: le="0.01"
        b.observe(nanoseconds: -5)  // clock skew counts as 0
        b.observe(microseconds: 20_000)  // above every bound: +Inf only
        let text = LatencyHistogram.exposition(name: "x_seconds", help: "h", [a, b])
        #expect(
            text == """
                # HELP x_seconds h
                # TYPE x_seconds histogram
                x_seconds_bucket{le="0.001"} 2
                x_seconds_bucket{le="0.01"} 3
                x_seconds_bucket{le="+Inf"} 4
                x_seconds_sum 0.022001
                x_seconds_count 4

                """)
    }
}
