import ClusterBus
import Runtime
import Testing

@Suite struct RedisBackoffTests {
    @Test func ceilingDoublesFromBaseUpToCap() {
        let b = RedisBackoff(baseMilliseconds: 100, capMilliseconds: 5000)
        #expect((1...8).map { b.ceiling(failures: $0) } == [100, 200, 400, 800, 1600, 3200, 5000, 5000])
        #expect(b.ceiling(failures: 10_000) == 5000, "no overflow for long outages")
        #expect(b.ceiling(failures: 0) == 100)
    }

    @Test func fullJitterSpansZeroToCeiling() {
        let b = RedisBackoff(baseMilliseconds: 100, capMilliseconds: 5000)
        #expect(b.delay(failures: 3, jitter: 0) == 0)
        #expect(b.delay(failures: 3, jitter: 0.5) == 200)
        #expect(b.delay(failures: 3, jitter: 0.999_999) == 399)
        #expect(b.delay(failures: 30, jitter: 0.5) == 2500)
        #expect(b.delay(failures: 1, jitter: .nan) == 0)
        #expect(b.delay(failures: 1, jitter: 7) == 100, "jitter is clamped to 0...1")
    }

    @Test func invalidSettingsAreClamped() {
        let b = RedisBackoff(baseMilliseconds: 0, capMilliseconds: -5)
        #expect(b.baseMilliseconds == 1 && b.capMilliseconds == 1)
    }
}
