import Runtime

/// A Lua script the bus loads with `SCRIPT LOAD` on every (re)connect and runs with `EVALSHA`
/// (reloading on `NOSCRIPT`, e.g. after `SCRIPT FLUSH` or a Redis restart).
public struct RedisScript: Sendable, Equatable {
    /// Short name for logs and metrics.
    public let name: String
    /// The Lua source, byte for byte what `SCRIPT LOAD` gets (its SHA-1 is the `EVALSHA` handle).
    public let source: String
}

/// The bus's Lua scripts. Each runs atomically in Redis, which is what gives a room one total order:
/// the `XADD` that assigns the offset and the `PUBLISH` that delivers it happen in one step, so the
/// subscription carries a room's messages in offset order to every node.
///
/// The publish script is a public interface for backends that speak only Redis; its keys, arguments and
/// SHA-1 are documented in docs/redis.md (a test checks that file against `publish.source`).
public enum RedisScripts {
    /// Appends to a room's history and publishes the message with its offset.
    ///
    /// KEYS[1] `{prefix}history:{room}`, KEYS[2] `{prefix}meta:{room}`, KEYS[3] (optional)
    /// `{prefix}idem:{room} {key}`, the publish's idempotency key;
    /// ARGV[1] `{prefix}room:{room}` (the channel), ARGV[2] the data (one JSON value, compact), ARGV[3] the
    /// history size N, ARGV[4] (optional) the history TTL in milliseconds: both keys expire that long after
    /// the room's last publish (absent or 0: never), ARGV[5] (with KEYS[3]) the idempotency window in ms.
    /// Returns `{epoch, entryID}`, or `{epoch, entryID, 1}` when KEYS[3] already held an offset: a repeat,
    /// answered with the first publish's offset and neither stored nor published again.
    ///
    /// Idempotency: the key is checked and set inside this script, so a publish and its retries are stored
    /// at most once within the window whatever the interleaving (a retry on a new connection may run before
    /// or after the original still queued on a dead one). `SET … PX window NX` stores `epoch:entryID`.
    ///
    /// The TTL is set again only when less than TTL − min(TTL/10, 60 s) is left (the `PTTL` that tells also
    /// replaces the `EXISTS` check), so a busy room pays no extra Redis call per publish. Redis CPU per call
    /// (`INFO commandstats`, 200,000 calls each, redis-benchmark -c 20): without a TTL 14.3–16.7 µs, with
    /// two `PEXPIRE`s on every publish 21.4–23.6 µs, as written here 16.8–17.3 µs.
    ///
    /// A stream found without its epoch (the meta hash was deleted or evicted on its own) is deleted first:
    /// its entries must not come back under the new epoch, where nothing could tell them from new messages.
    /// The epoch is created with the stream (a reset or evicted history gets a new one): Redis's clock in µs
    /// plus 8 hex digits of the server's `run_id` (random per server start), so neither a restart nor a clock
    /// step reproduces an old epoch (Lua's `math.random` is seeded identically on every start: not usable).
    /// Trimming keeps N to N + min(10, N/10) entries and records the ID of the last entry trimmed in the
    /// meta hash: `join since` must know exactly whether anything after an offset is gone (Redis 7.0's
    /// `max-deleted-entry-id` ignores trimming). Small batches keep the occasional trimming publish cheap
    /// (~10 entries read, tens of µs); batches of 100 took ~0.6 ms and showed up in the cross-node p99, and
    /// trimming one entry per publish made every publish slower.
    public static let publish = RedisScript(
        name: "publish",
        source: """
            -- switchboard publish v5: KEYS history, meta, idempotency key (optional); ARGV channel, data (JSON), history size, history TTL ms (optional), idempotency window ms (with KEYS[3])
            if KEYS[3] then
              local first = redis.call('GET', KEYS[3])
              if first then
                local e, i = string.match(first, '^(%x+):(%d+%-%d+)$')
                if e then return {e, i, 1} end
              end
            end
            local epoch = redis.call('HGET', KEYS[2], 'epoch')
            local left = redis.call('PTTL', KEYS[1])
            if (not epoch) or left == -2 then
              if left ~= -2 then
                redis.call('DEL', KEYS[1])
                left = -2
              end
              local t = redis.call('TIME')
              local run = string.match(redis.call('INFO', 'server'), 'run_id:(%x+)') or ''
              epoch = string.format('%x%05x', tonumber(t[1]), tonumber(t[2])) .. string.sub(run, 1, 8)
              redis.call('HSET', KEYS[2], 'epoch', epoch, 'trimmed', '0-0')
            end
            local id = redis.call('XADD', KEYS[1], '*', 'd', ARGV[2])
            local keep = tonumber(ARGV[3])
            local len = redis.call('XLEN', KEYS[1])
            if len > keep + math.min(10, math.floor(keep / 10)) then
              local cut = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', len - keep)
              redis.call('XTRIM', KEYS[1], 'MAXLEN', keep)
              redis.call('HSET', KEYS[2], 'trimmed', cut[#cut][1])
            end
            local ttl = tonumber(ARGV[4] or '0') or 0
            if ttl > 0 and left < ttl - math.min(math.floor(ttl / 10), 60000) then
              redis.call('PEXPIRE', KEYS[1], ttl)
              redis.call('PEXPIRE', KEYS[2], ttl)
            end
            if KEYS[3] then
              redis.call('SET', KEYS[3], epoch .. ':' .. id, 'PX', ARGV[5], 'NX')
            end
            redis.call('PUBLISH', ARGV[1], '{"offset":"' .. epoch .. ':' .. id .. '","data":' .. ARGV[2] .. '}')
            return {epoch, id}
            """)

    /// Reads a room's position and, with a `since` offset, what follows it (joins and back-fills).
    ///
    /// KEYS[1] history, KEYS[2] meta; ARGV[1] since's epoch (`""` = none), ARGV[2] since's entry ID,
    /// ARGV[3] `join` or `backfill`, ARGV[4] the history TTL in milliseconds (0: never) given to keys it creates. Returns `{epoch, lastID, recovered (0/1), entries}` where entries are
    /// `XRANGE` replies after `since` (exclusive). `recovered` is 1 when the epoch matches, `since` is not
    /// beyond the last ID and nothing after it was trimmed. A join gets entries only when recovered; a
    /// back-fill gets whatever is there (the whole new history when the epoch changed).
    /// Creates an empty stream and its epoch when the room has none, so the offset a join returns stays
    /// valid for the first publish.
    public static let read = RedisScript(
        name: "read",
        source: """
            -- switchboard read v3: KEYS history, meta; ARGV since epoch, since id, mode (join|backfill), history TTL ms
            local function numcmp(a, b)
              a = string.gsub(a, '^0+(%d)', '%1')
              b = string.gsub(b, '^0+(%d)', '%1')
              if #a ~= #b then return #a < #b and -1 or 1 end
              if a == b then return 0 end
              return a < b and -1 or 1
            end
            local function idcmp(a, b)
              local am, as = string.match(a, '^(%d+)-(%d+)$')
              local bm, bs = string.match(b, '^(%d+)-(%d+)$')
              local c = numcmp(am, bm)
              if c ~= 0 then return c end
              return numcmp(as, bs)
            end
            local epoch = redis.call('HGET', KEYS[2], 'epoch')
            local trimmed = redis.call('HGET', KEYS[2], 'trimmed') or '0-0'
            local exists = redis.call('EXISTS', KEYS[1]) == 1
            if (not epoch) or (not exists) then
              if exists then
                redis.call('DEL', KEYS[1])
                exists = false
              end
              if not exists then
                redis.call('XGROUP', 'CREATE', KEYS[1], 'switchboard-init', '$', 'MKSTREAM')
                redis.call('XGROUP', 'DESTROY', KEYS[1], 'switchboard-init')
              end
              local t = redis.call('TIME')
              local run = string.match(redis.call('INFO', 'server'), 'run_id:(%x+)') or ''
              epoch = string.format('%x%05x', tonumber(t[1]), tonumber(t[2])) .. string.sub(run, 1, 8)
              trimmed = '0-0'
              redis.call('HSET', KEYS[2], 'epoch', epoch, 'trimmed', trimmed)
              local ttl = tonumber(ARGV[4] or '0') or 0
              if ttl > 0 then
                redis.call('PEXPIRE', KEYS[1], ttl)
                redis.call('PEXPIRE', KEYS[2], ttl)
              end
            end
            local last = '0-0'
            local tail = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
            if #tail > 0 then
              last = tail[1][1]
            else
              local info = redis.call('XINFO', 'STREAM', KEYS[1])
              for i = 1, #info, 2 do
                if info[i] == 'last-generated-id' then last = info[i + 1] end
              end
            end
            local recovered = 0
            local entries = {}
            if ARGV[1] ~= '' then
              if ARGV[1] == epoch then
                local c = idcmp(ARGV[2], last)
                if c <= 0 and idcmp(ARGV[2], trimmed) >= 0 then recovered = 1 end
                if c < 0 and (recovered == 1 or ARGV[3] == 'backfill') then
                  entries = redis.call('XRANGE', KEYS[1], '(' .. ARGV[2], '+')
                end
              elseif ARGV[3] == 'backfill' then
                entries = redis.call('XRANGE', KEYS[1], '-', '+')
              end
            end
            return {epoch, last, recovered, entries}
            """)

    /// Sets or removes this node's member count in a room's presence hash, and updates the set of
    /// authenticated users this node has in the room.
    ///
    /// KEYS[1] `{prefix}presence:{room}`, KEYS[2] `{prefix}node-rooms:{node}`, KEYS[3]
    /// `{prefix}presence-users:{room} {node}`; ARGV[1] node id, ARGV[2] count (0 removes the entry and the
    /// user set), ARGV[3] room, ARGV[4] `1` to replace the user set, ARGV[5] the number k of users added,
    /// ARGV[6 ... 5+k] users added, the rest users removed.
    public static let presence = RedisScript(
        name: "presence",
        source: """
            -- switchboard presence v2: KEYS presence hash, node-rooms set, node's user set; ARGV node, count, room, replace, k, added..., removed...
            local function apply(cmd, from, to)
              for i = from, to, 500 do
                redis.call(cmd, KEYS[3], unpack(ARGV, i, math.min(i + 499, to)))
              end
            end
            if tonumber(ARGV[2]) > 0 then
              redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
              redis.call('SADD', KEYS[2], ARGV[3])
              if ARGV[4] == '1' then redis.call('DEL', KEYS[3]) end
              local k = tonumber(ARGV[5])
              apply('SADD', 6, 5 + k)
              apply('SREM', 6 + k, #ARGV)
            else
              redis.call('HDEL', KEYS[1], ARGV[1])
              redis.call('SREM', KEYS[2], ARGV[3])
              redis.call('DEL', KEYS[3])
            end
            return 1
            """)

    /// A room's presence across the cluster: the sum of the nodes' member counts and the number of
    /// distinct users in the union of the nodes' user sets.
    ///
    /// KEYS[1] `{prefix}presence:{room}`; ARGV[1] prefix, ARGV[2] room. Returns `{connections, users}`.
    public static let presenceRead = RedisScript(
        name: "presence-read",
        source: """
            -- switchboard presence-read v1: KEYS presence hash; ARGV prefix, room
            local entries = redis.call('HGETALL', KEYS[1])
            local count, users, seen = 0, 0, {}
            for i = 1, #entries, 2 do
              count = count + math.max(0, tonumber(entries[i + 1]) or 0)
              for _, u in ipairs(redis.call('SMEMBERS', ARGV[1] .. 'presence-users:' .. ARGV[2] .. ' ' .. entries[i])) do
                if not seen[u] then
                  seen[u] = true
                  users = users + 1
                end
              end
            end
            return {count, users}
            """)

    /// Refreshes this node's registry key, optionally announces an event on `{prefix}ctl`, and removes the
    /// presence entries (counts and user sets) of every registered node whose key expired (crash, SIGKILL,
    /// partition).
    ///
    /// KEYS[1] `{prefix}nodes`; ARGV[1] prefix, ARGV[2] node id, ARGV[3] node info (JSON object), ARGV[4] TTL
    /// (ms), ARGV[5] event to announce (`node-up`, `node-draining`) or `""`, ARGV[6] `1` to clear this node's
    /// own presence entries first (on every (re)connect, followed by a rewrite of the current counts, so
    /// entries left by an earlier process with the same id do not linger), ARGV[7] (optional) `1` when the
    /// presence keys live on other slots (Redis Cluster: ARGV[1] is `{prefix}{nodes}`, and the caller removes
    /// the entries room by room on each room's slot), ARGV[8] (with ARGV[7]) the clean-up lease in ms. Returns
    /// `{existed (0/1), removed node ids, the registry value it replaced ("" when none), cleared}`; `existed` 0
    /// means this node had been given up for dead, so it rewrites its presence; a replaced value other than the
    /// one this node wrote last means another live node uses the same id; `cleared` is empty unless ARGV[7] is
    /// `1`, then `{node id, {rooms…}}` per node whose rooms this caller must clear now.
    ///
    /// With ARGV[7] the clean-up is claimed, not consumed: a node's `node-rooms` set moves to
    /// `cleaning-rooms:{id}` and the id into the `cleaning` sorted set, scored by the end of the caller's lease
    /// (ARGV[8] ms from now). The caller `SREM`s each room from `cleaning-rooms:{id}` once its entries are gone;
    /// a lease that ends with rooms left (the cleaner died or failed) hands them to the next heartbeat's caller,
    /// so a dead node's presence never outlives every cleaner.
    /// Keys other than KEYS[1] are derived from the prefix, so all of them share its slot.
    public static let heartbeat = RedisScript(
        name: "heartbeat",
        source: """
            -- switchboard heartbeat v5: KEYS nodes set; ARGV prefix, node, info JSON, ttl ms, event, reset own presence, presence elsewhere (optional), clean-up lease ms (with it)
            local p = ARGV[1]
            local me = ARGV[2]
            local elsewhere = ARGV[7] == '1'
            local cleared = {}
            local nowms = 0
            if elsewhere then
              local t = redis.call('TIME')
              nowms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
            end
            local function claim(id)
              local rooms = redis.call('SMEMBERS', p .. 'cleaning-rooms:' .. id)
              if #rooms == 0 then
                redis.call('ZREM', p .. 'cleaning', id)
                return
              end
              cleared[#cleared + 1] = {id, rooms}
              redis.call('ZADD', p .. 'cleaning', nowms + tonumber(ARGV[8] or '0'), id)
            end
            local function clear(id)
              if elsewhere then
                if redis.call('EXISTS', p .. 'node-rooms:' .. id) == 1 then
                  redis.call('SUNIONSTORE', p .. 'cleaning-rooms:' .. id, p .. 'cleaning-rooms:' .. id, p .. 'node-rooms:' .. id)
                  redis.call('DEL', p .. 'node-rooms:' .. id)
                end
                claim(id)
                return
              end
              for _, room in ipairs(redis.call('SMEMBERS', p .. 'node-rooms:' .. id)) do
                redis.call('HDEL', p .. 'presence:' .. room, id)
                redis.call('DEL', p .. 'presence-users:' .. room .. ' ' .. id)
              end
              redis.call('DEL', p .. 'node-rooms:' .. id)
            end
            local previous = redis.call('GET', p .. 'node:' .. me)
            local existed = previous and 1 or 0
            if ARGV[6] == '1' then clear(me) end
            redis.call('SET', p .. 'node:' .. me, ARGV[3], 'PX', ARGV[4])
            redis.call('SADD', KEYS[1], me)
            if ARGV[5] ~= '' then
              redis.call('PUBLISH', p .. 'ctl', '{"event":' .. cjson.encode(ARGV[5]) .. ',"node":' .. cjson.encode(me) .. ',"info":' .. ARGV[3] .. '}')
            end
            local removed = {}
            for _, id in ipairs(redis.call('SMEMBERS', KEYS[1])) do
              if redis.call('EXISTS', p .. 'node:' .. id) == 0 then
                clear(id)
                redis.call('SREM', KEYS[1], id)
                redis.call('PUBLISH', p .. 'ctl', '{"event":"node-down","node":' .. cjson.encode(id) .. ',"reason":"expired"}')
                removed[#removed + 1] = id
              end
            end
            if elsewhere then
              -- A live node's own list is its own to finish (it keeps the rooms it has members in).
              for _, id in ipairs(redis.call('ZRANGEBYSCORE', p .. 'cleaning', '-inf', nowms)) do
                if id == me or redis.call('EXISTS', p .. 'node:' .. id) == 0 then claim(id) end
              end
            end
            return {existed, removed, previous or '', cleared}
            """)

    /// A node leaving cleanly: removes its presence entries (counts and user sets) and registry key and
    /// announces `node-down`.
    ///
    /// KEYS[1] `{prefix}nodes`; ARGV[1] prefix, ARGV[2] node id, ARGV[3] (optional) `1` when the presence
    /// keys live on other slots (Redis Cluster: the caller removed them on each room's slot first).
    public static let leave = RedisScript(
        name: "leave",
        source: """
            -- switchboard leave v3: KEYS nodes set; ARGV prefix, node, presence elsewhere (optional)
            local p = ARGV[1]
            local me = ARGV[2]
            if ARGV[3] ~= '1' then
              for _, room in ipairs(redis.call('SMEMBERS', p .. 'node-rooms:' .. me)) do
                redis.call('HDEL', p .. 'presence:' .. room, me)
                redis.call('DEL', p .. 'presence-users:' .. room .. ' ' .. me)
              end
            end
            redis.call('DEL', p .. 'node-rooms:' .. me, p .. 'node:' .. me)
            redis.call('SREM', KEYS[1], me)
            redis.call('PUBLISH', p .. 'ctl', '{"event":"node-down","node":' .. cjson.encode(me) .. ',"reason":"stopped"}')
            return 1
            """)

    /// The cluster-wide drain semaphore (`--max-draining`): a sorted set of node ids scored by expiry, so a
    /// node that dies while draining frees its slot after the TTL.
    ///
    /// KEYS[1] `{prefix}drain-slots`; ARGV[1] node id, ARGV[2] max concurrent drains, ARGV[3] TTL (ms),
    /// ARGV[4] `acquire` or `release`. Returns 1 when the slot is held (or released), 0 when all are taken.
    public static let drainSlot = RedisScript(
        name: "drain-slot",
        source: """
            -- switchboard drain-slot v1: KEYS slots zset; ARGV node, max, ttl ms, acquire|release
            local t = redis.call('TIME')
            local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
            redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
            if ARGV[4] == 'release' then
              redis.call('ZREM', KEYS[1], ARGV[1])
              return 1
            end
            if redis.call('ZSCORE', KEYS[1], ARGV[1]) or redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[2]) then
              redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[1])
              return 1
            end
            return 0
            """)

    /// ARGV of `drainSlot` after its one key `key` (`{prefix}drain-slots`): node, max (at least 1), TTL ms
    /// (at least 1), mode.
    static func drainSlotArguments(key: String, node: String, maxDraining: Int, ttlMilliseconds: Int, mode: String) -> [[UInt8]] {
        [Array(key.utf8), Array(node.utf8), Array(String(max(1, maxDraining)).utf8), Array(String(max(1, ttlMilliseconds)).utf8), Array(mode.utf8)]
    }

    /// Every script, in load order.
    public static let all: [RedisScript] = [publish, read, presence, presenceRead, heartbeat, leave, drainSlot, tokenBucket]
}
