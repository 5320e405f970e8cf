import Foundation

/// Stretch factor for wall-clock bounds in tests — deadlines and rate tolerances, never sleeps.
/// `SWITCHBOARD_TEST_TIME_SCALE` (a number ≥ 1, default 1): scripts/tsan.sh sets 4 because the TSan build of
/// the gateway runs several times slower, and a bound that only fails because of that hides real results.
enum TestTiming {
    static let scale: Double = {
        guard let text = ProcessInfo.processInfo.environment["SWITCHBOARD_TEST_TIME_SCALE"], let v = Double(text), v >= 1 else { return 1 }
        return v
    }()

    /// `seconds` stretched by ``scale``.
    static func seconds(_ seconds: Double) -> Double { seconds * scale }
}
