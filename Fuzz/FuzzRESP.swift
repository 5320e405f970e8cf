// libFuzzer entry point for RESP handling: hiredis's reader (reached through the CHiredis module:
// redisReaderCreate / redisReaderFeed / redisReaderGetReply) fed arbitrary bytes, and every reply it produces
// deep-copied into ClusterBus's `RedisReply` (Sources/ClusterBus/RedisReply.swift, compiled into this binary;
// the module is named `Runtime` so that file's `import Runtime` is ignored). The same bytes also go through
// `RedisPipeline` (Sources/ClusterBus/RedisPipeline.swift, what our connection runs), subscribed, with
// regular commands and a subscription waiting: whole and cut in two they must complete the same commands
// with the same replies, push the same pushes and fail alike.
import CHiredis

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzRESP(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    // hiredis 0.14 allocates an aggregate's element array from its header before any element arrives
    // (`*1777777777` asks for gigabytes): its own behaviour with a trusted server (docs/security.md: Redis is
    // trusted), not our handling. Such headers are skipped so the run explores what our code does.
    if declaresHugeAggregate(bytes) { return 0 }
    let cut = bytes.isEmpty ? 0 : Int(bytes[0]) * bytes.count / 256
    let whole = read([bytes[...]])
    let split = read([bytes[..<cut], bytes[cut...]])
    precondition(whole.replies == split.replies && whole.failed == split.failed, "whole and split RESP reads disagree")
    let pipeWhole = pipeline([bytes[...]])
    let pipeSplit = pipeline([bytes[..<cut], bytes[cut...]])
    precondition(pipeWhole == pipeSplit, "whole and split RedisPipeline feeds disagree")
    return 0
}

/// What a `RedisPipeline` did with the pieces: completions, pushes, subscription errors, in order, and whether it failed.
private func pipeline(_ pieces: [ArraySlice<UInt8>]) -> [String] {
    let p = RedisPipeline()
    var events: [String] = []
    p.onPush = { events.append("push \(RedisReply(copying: $0))") }
    p.onSubscriptionError = { events.append("suberr \($0)") }
    for i in 0..<4 { p.expectReply { events.append("reply \(i) \(String(describing: $0))") } }
    p.expectSubscription(verb: "SSUBSCRIBE", channels: 2)
    for i in 4..<8 { p.expectReply { events.append("reply \(i) \(String(describing: $0))") } }
    for piece in pieces {
        let ok = piece.withUnsafeBytes { raw -> Bool in
            do { try p.feed(raw); return true } catch { return false }
        }
        if !ok { events.append("failed"); break }
    }
    p.failAll()
    events.append("pending \(p.pendingReplies)")
    return events
}

/// Feeds the pieces in order, taking every complete reply after each; stops at the first protocol error.
private func read(_ pieces: [ArraySlice<UInt8>]) -> (replies: [RedisReply], failed: Bool) {
    guard let reader = redisReaderCreate() else { return ([], true) }
    defer { redisReaderFree(reader) }
    var replies: [RedisReply] = []
    for piece in pieces {
        let fed = piece.withUnsafeBytes { raw in
            redisReaderFeed(reader, raw.baseAddress?.assumingMemoryBound(to: CChar.self), raw.count)
        }
        if fed != REDIS_OK { return (replies, true) }
        while true {
            var reply: UnsafeMutableRawPointer?
            guard redisReaderGetReply(reader, &reply) == REDIS_OK else { return (replies, true) }
            guard let reply else { break }
            replies.append(RedisReply(copying: reply.assumingMemoryBound(to: redisReply.self)))
            freeReplyObject(reply)
            // Bounded work per input: a long run of tiny replies teaches nothing more.
            if replies.count > 1000 { return (replies, false) }
        }
    }
    return (replies, false)
}

/// True when a `*`, `%` or `~` header declares more than 100,000 elements (digits after the type byte).
private func declaresHugeAggregate(_ bytes: [UInt8]) -> Bool {
    var i = 0
    while i < bytes.count {
        if bytes[i] == UInt8(ascii: "*") || bytes[i] == UInt8(ascii: "%") || bytes[i] == UInt8(ascii: "~") {
            var n = 0
            var j = i + 1
            while j < bytes.count, bytes[j] >= 0x30, bytes[j] <= 0x39, n <= 100_000 {
                n = n * 10 + Int(bytes[j] - 0x30)
                j += 1
            }
            if n > 100_000 { return true }
        }
        i += 1
    }
    return false
}
