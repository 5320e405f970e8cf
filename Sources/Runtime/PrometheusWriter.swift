/// Builds a Prometheus text exposition (format 0.0.4, <https://prometheus.io/docs/instrumenting/exposition_formats/>):
/// each family is `# HELP`, `# TYPE`, then one `name{labels} value` line per sample.
///
/// The one writer of `/metrics` text: the gateway's families, the auth families and the cluster bus's
/// families (`NodeRegistry.writeMetrics`) all go through it, so formatting rules live in one place.
public struct PrometheusWriter: Sendable {
    /// A family's `# TYPE`.
    public enum Kind: String, Sendable {
        case counter, gauge
    }

    /// The exposition so far.
    public private(set) var text = ""

    public init() {}

    /// One family with integer samples. `labels` is the label set in braces (`{conn="commands"}`) or `""`.
    public mutating func family(_ name: String, _ kind: Kind, _ help: String, _ samples: [(labels: String, value: Int)]) {
        header(name, kind, help)
        for (labels, v) in samples { text += "\(name)\(labels) \(v)\n" }
    }

    /// One family with floating-point samples; integral values below 1e15 are written without a fraction
    /// (`3`, not `3.0`), others in Swift's shortest round-trip form.
    public mutating func family(_ name: String, _ kind: Kind, _ help: String, _ samples: [(labels: String, value: Double)]) {
        header(name, kind, help)
        for (labels, v) in samples {
            let value = v == v.rounded() && abs(v) < 1e15 ? String(Int64(v)) : String(v)
            text += "\(name)\(labels) \(value)\n"
        }
    }

    /// A histogram family: the sum of `histograms` (which share their bounds), see `LatencyHistogram.exposition`.
    public mutating func histogram(_ name: String, _ help: String, _ histograms: [LatencyHistogram]) {
        text += LatencyHistogram.exposition(name: name, help: help, histograms)
    }

    private mutating func header(_ name: String, _ kind: Kind, _ help: String) {
        text += "# HELP \(name) \(help)\n# TYPE \(name) \(kind.rawValue)\n"
    }
}
