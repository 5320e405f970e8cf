import Gateway
import Runtime
import Testing

/// The gateway flags that configure the Redis bus.
@Suite struct RedisConfigFlagsTests {
    @Test func defaultsAndParsedValues() throws {
        let d = try Config.parse(arguments: [], environment: [:])
        #expect(d.redisURL == nil && d.redisBackoffBaseMs == 100 && d.redisBackoffCapMs == 5000)
        #expect(d.heartbeatIntervalMs == 2000 && d.nodeTTLMs == 6000 && d.redisAttemptLog == 5)
        let c = try Config.parse(
            arguments: [
                "--redis-url", "redis://u:pw@127.0.0.1:7000/3", "--redis-backoff-base", "50ms",
                "--redis-backoff-cap", "2s", "--heartbeat-interval", "500ms", "--node-ttl", "3s"
            ],
            environment: [:])
        #expect(c.redisURL == "redis://u:pw@127.0.0.1:7000/3")
        #expect(c.redisBackoffBaseMs == 50 && c.redisBackoffCapMs == 2000 && c.heartbeatIntervalMs == 500 && c.nodeTTLMs == 3000)
        let shown = c.loggable.first { $0.0 == "redis-url" }?.1
        #expect(shown == "redis://u:***@127.0.0.1:7000/3", "the startup log masks the password")
        let env = try Config.parse(arguments: [], environment: ["SWITCHBOARD_REDIS_URL": "redis://cache:6379/0"])
        #expect(env.redisURL == "redis://cache:6379/0")
    }

    @Test func invalidValuesAreOneLineErrors() {
        let bad: [[String]] = [
            ["--redis-url", "http://127.0.0.1:6379"],
            ["--redis-url", "redis://h:99999/0"],
            ["--heartbeat-interval", "5s", "--node-ttl", "5s"],
            ["--redis-backoff-base", "2s", "--redis-backoff-cap", "1s"],
            ["--redis-attempt-log", "0"]
        ]
        for args in bad {
            #expect(throws: Config.Invalid.self, "\(args)") { try Config.parse(arguments: args, environment: [:]) }
        }
    }
}
