import Runtime
import Testing

/// The one Prometheus text writer: HELP/TYPE headers and sample formatting (exposition format 0.0.4).
@Suite struct PrometheusWriterTests {
    @Test func writesHeadersThenOneLinePerSample() {
        var w = PrometheusWriter()
        w.family("x_total", .counter, "Things.", [(labels: "{a=\"1\"}", value: 3), (labels: "{a=\"2\"}", value: 0)])
        w.family("y", .gauge, "Level.", [(labels: "", value: 2.0), (labels: "{k=\"v\"}", value: 0.25)])
        #expect(
            w.text == """
                # HELP x_total Things.
                # TYPE x_total counter
                x_total{a="1"} 3
                x_total{a="2"} 0
                # HELP y Level.
                # TYPE y gauge
                y 2
                y{k="v"} 0.25

                """)
    }

    @Test func largeOrFractionalDoublesKeepTheirValue() {
        var w = PrometheusWriter()
        w.family("z", .gauge, "Z.", [(labels: "", value: 1e16), (labels: "", value: -1.5)])
        #expect(w.text.hasSuffix("z 1e+16\nz -1.5\n"))
    }

    @Test func histogramsUseTheSharedExposition() {
        let h = LatencyHistogram(bounds: [0.001, 0.01])
        h.observe(microseconds: 500)
        var w = PrometheusWriter()
        w.histogram("lat_seconds", "Latency.", [h])
        #expect(w.text == LatencyHistogram.exposition(name: "lat_seconds", help: "Latency.", [h]))
        #expect(w.text.contains("# TYPE lat_seconds histogram"))
    }
}
