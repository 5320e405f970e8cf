import Protocol
import Runtime

/// Analytics over Redis: a per-user token bucket shared by every node (one Lua round trip, key with a
/// TTL) and a stream `{prefix}analytics` that backends read with `XREAD` or consumer groups
/// (docs/redis.md). Events arrive here already batched by each loop.
extension RedisBus {
    /// `{prefix}analytics`: the analytics stream (fields: user, node, room, event, data, ts).
    var analyticsStream: String { keys.prefix + "analytics" }

    public func takeAnalyticsBudget(user: String, ratePerSecond: Double, burst: Int, completion: @escaping @Sendable (Int?) -> Void) {
        onLoop { [self] in
            guard commands != nil, commands.isReady, let conn = commands.connection,
                let sha = scriptSHAs[RedisScripts.tokenBucket.name]
            else {
                completion(1000)  // bus down: not allowed, never unmetered
                return
            }
            guard analyticsInFlight < RedisBus.maxAnalyticsInFlight else {
                metrics.analyticsDropped.add(1)
                completion(100)  // Redis is behind: refuse rather than buffer without bound
                return
            }
            analyticsInFlight += 1
            let args = RedisAnalyticsWire.bucketArguments(prefix: keys.prefix, user: user, ratePerSecond: ratePerSecond, burst: burst)
            let build = { (sha: String) -> RedisCommand in
                var cmd = RedisCommand("EVALSHA", argumentCount: 3 + args.count)
                cmd.append(sha)
                cmd.append("1")
                for a in args { cmd.append(a) }
                return cmd
            }
            evalScript(RedisScripts.tokenBucket, on: conn, sha: sha, build) { [self] reply in
                analyticsInFlight -= 1
                completion(RedisAnalyticsWire.wait(reply))
            }
        }
    }

    public func appendAnalytics(_ events: [AnalyticsEvent], maxLength: Int) {
        guard !events.isEmpty else { return }
        onLoop { [self] in
            guard commands != nil, commands.isReady, let conn = commands.connection else {
                metrics.analyticsDropped.add(events.count)
                return
            }
            // Pipelined: the batch leaves in one write at the end of the loop iteration; replies are only counted.
            for e in events {
                guard analyticsInFlight < RedisBus.maxAnalyticsInFlight else {
                    metrics.analyticsDropped.add(1)
                    continue
                }
                analyticsInFlight += 1
                let cmd = RedisAnalyticsWire.append(e, stream: analyticsStream, maxLength: maxLength)
                let sent = conn.send(cmd) { [self] reply in
                    analyticsInFlight -= 1
                    if reply?.errorMessage != nil || reply == nil { metrics.analyticsDropped.add(1) }
                }
                if !sent {
                    analyticsInFlight -= 1
                    metrics.analyticsDropped.add(1)
                }
            }
        }
    }

    public func recentAnalytics(count: Int, completion: @escaping @Sendable ([AnalyticsEvent]) -> Void) {
        onLoop { [self] in
            guard commands != nil, commands.isReady, let conn = commands.connection else { return completion([]) }
            let sent = conn.send(RedisAnalyticsWire.recent(stream: analyticsStream, count: count)) { reply in
                completion(RedisAnalyticsWire.events(reply))
            }
            if !sent { completion([]) }
        }
    }
}

/// The analytics commands and replies, the same on one Redis and on a cluster (where each key is routed to
/// its own slot): the token bucket's key and arguments, one event's `XADD`, and the stream read back.
enum RedisAnalyticsWire {
    /// KEYS[1] and ARGV of `tokenBucket` for `user`: `{prefix}ratelimit:analytics:{user}`, rate, burst.
    static func bucketArguments(prefix: String, user: String, ratePerSecond: Double, burst: Int) -> [[UInt8]] {
        [Array((prefix + "ratelimit:analytics:" + user).utf8), Array(String(ratePerSecond).utf8), Array(String(max(1, burst)).utf8)]
    }

    /// The budget's answer: nil when allowed, else ms to wait (1000 when Redis did not answer a number).
    static func wait(_ reply: RedisReply?) -> Int? {
        guard let wait = reply?.int else { return 1000 }
        return wait == 0 ? nil : wait
    }

    /// `XADD {stream} MAXLEN ~ {maxLength} * field value …` for one event.
    static func append(_ e: AnalyticsEvent, stream: String, maxLength: Int) -> RedisCommand {
        var cmd = RedisCommand("XADD", argumentCount: 6 + 2 * 6)
        cmd.append(stream)
        cmd.append("MAXLEN")
        cmd.append("~")
        cmd.append(max(1, maxLength))
        cmd.append("*")
        for (k, v) in e.fields {
            cmd.append(k)
            cmd.append(v)
        }
        return cmd
    }

    /// The newest `count` entries, newest first.
    static func recent(stream: String, count: Int) -> RedisCommand {
        RedisCommand(["XREVRANGE", stream, "+", "-", "COUNT", String(max(1, count))])
    }

    /// The events of a `recent` reply, oldest first (empty for an error or no reply).
    static func events(_ reply: RedisReply?) -> [AnalyticsEvent] {
        guard case .array(let entries)? = reply else { return [] }
        var out: [AnalyticsEvent] = []
        for entry in entries {
            guard case .array(let pair) = entry, pair.count == 2, case .array(let kv) = pair[1] else { continue }
            var f: [String: String] = [:]
            var i = 0
            while i + 1 < kv.count {
                if let k = kv[i].text { f[k] = kv[i + 1].text ?? "" }
                i += 2
            }
            out.append(
                AnalyticsEvent(
                    user: f["user"] ?? "", node: f["node"] ?? "", room: (f["room"] ?? "").isEmpty ? nil : f["room"],
                    event: f["event"] ?? "", data: (f["data"] ?? "").isEmpty ? nil : JSONFragment(bytes: Array(f["data"]!.utf8)),
                    serverTimeMilliseconds: UInt64(f["ts"] ?? "") ?? 0))
        }
        return out.reversed()
    }
}

extension RedisScripts {
    /// A token bucket shared by every node (GCRA form: one key holding the theoretical arrival time).
    ///
    /// KEYS[1] `{prefix}ratelimit:analytics:{user}`; ARGV[1] rate (events/s), ARGV[2] burst.
    /// Returns 0 when the event is allowed, else the ms to wait. The key expires once the bucket is full
    /// again, so idle users cost nothing. Redis's own clock (`TIME`) is the clock, so nodes need no sync.
    public static let tokenBucket = RedisScript(
        name: "token-bucket",
        source: """
            -- switchboard token bucket v1 (GCRA): KEYS bucket; ARGV rate per second, burst
            local rate = tonumber(ARGV[1])
            local burst = tonumber(ARGV[2])
            local t = redis.call('TIME')
            local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
            local interval = 1000 / rate
            local tat = tonumber(redis.call('GET', KEYS[1]) or now)
            if tat < now then tat = now end
            local allow_at = tat - burst * interval
            if now < allow_at + interval - 0.0001 then
              return math.ceil(allow_at + interval - now)
            end
            local new_tat = tat + interval
            redis.call('SET', KEYS[1], tostring(new_tat), 'PX', math.ceil(new_tat - now) + 1000)
            return 0
            """)
}
