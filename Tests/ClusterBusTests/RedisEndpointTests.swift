import ClusterBus
import Runtime
import Testing

@Suite struct RedisEndpointTests {
    @Test func parsesHostPortDatabaseAndCredentials() throws {
        #expect(try RedisEndpoint(url: "redis://127.0.0.1:6380/2") == RedisEndpoint(host: "127.0.0.1", port: 6380, database: 2))
        #expect(try RedisEndpoint(url: "redis://cache") == RedisEndpoint(host: "cache"))
        #expect(try RedisEndpoint(url: "redis://cache/") == RedisEndpoint(host: "cache"))
        #expect(try RedisEndpoint(url: "redis://[::1]:7000/1") == RedisEndpoint(host: "::1", port: 7000, database: 1))
        let e = try RedisEndpoint(url: "redis://app:p%40ss@10.0.0.5:6379/0")
        #expect(e.username == "app" && e.password == "p@ss" && e.host == "10.0.0.5")
        #expect(e.description == "redis://app:***@10.0.0.5:6379/0", "the password is masked")
        #expect(try RedisEndpoint(url: "redis://secret@h").password == "secret")
        #expect(try RedisEndpoint(url: "redis://:secret@h").username == nil)
    }

    @Test func redissMeansTLSAndIsNeverDowngraded() throws {
        let e = try RedisEndpoint(url: "rediss://:pw@redis.example:6380/1")
        #expect(e == RedisEndpoint(host: "redis.example", port: 6380, database: 1, password: "pw", tls: true))
        #expect(e.description == "rediss://:***@redis.example:6380/1")
        #expect(try RedisEndpoint(url: "REDISS://h").tls)
        #expect(try !RedisEndpoint(url: "redis://h").tls)
    }

    @Test func rejectsWhatItCannotHonour() {
        for bad in [
            "http://h:6379", "rediss:/h", "rediss://", "redis://", "redis://:6379", "redis://h:0", "redis://h:70000", "redis://h:x",
            "redis://h/db", "redis://h/-1", "redis://h?timeout=1", "redis://[::1", "redis://u:%zz@h"
        ] {
            #expect(throws: RedisEndpoint.Invalid.self, "\(bad)") { try RedisEndpoint(url: bad) }
        }
    }
}
