import CHiredis

/// A RESP stream from Redis that cannot be read on: the connection carrying it must be dropped.
public struct RedisProtocolError: Error, Equatable, Sendable, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// The client side of one Redis connection's protocol with no I/O (sans-I/O): which reply belongs to which
/// command, and which replies are pub/sub pushes. The owner writes each command's bytes itself, in the
/// order it announces them here, and feeds whatever the server sent, split anywhere.
///
/// - Parsing is hiredis 0.14's reader (`redisReaderCreate` / `redisReaderFeed` / `redisReaderGetReply`),
///   RESP2. A malformed stream is a `RedisProtocolError` (the reader's own message) and the pipeline stays
///   failed; replies parsed before it were delivered.
/// - Regular replies complete the oldest waiting command, in order (Redis answers a connection's commands
///   in the order it received them: pipelining needs nothing more).
/// - `SUBSCRIBE`, `SSUBSCRIBE`, `PSUBSCRIBE` and their `UN…` forms of N channels are answered by N
///   confirmations (`["subscribe", channel, count]` …), pushed to `onPush`; an error reply to one of them
///   (a refused `SSUBSCRIBE`: `MOVED`, `CROSSSLOT`) goes to `onSubscriptionError`. Messages (`message`,
///   `pmessage`, `smessage`) and confirmations nobody asked for (Redis 7 sends `sunsubscribe` when a slot
///   leaves the shard) are pushed at any time once the connection has subscribed.
/// - Only the commands that are valid in RESP2 subscribed mode may follow a subscription on the same
///   connection (the bus never sends another): an array answer shaped like a push is read as a push there.
///
/// Loop-confined (a class: it owns the C reader). Pushes hand out hiredis's reply, valid during the call only.
public final class RedisPipeline {
    private enum Waiting {
        /// A regular command; its completion.
        case reply((RedisReply?) -> Void)
        /// A (un)subscribe command still owed `remaining` confirmations whose first element is `word`
        /// (the command's name in lower case).
        case subscription(word: [UInt8], remaining: Int)
    }

    private var reader: UnsafeMutablePointer<redisReader>?
    /// Oldest first; `head` is the next to be answered (a ring without moving elements per reply).
    private var waiting: [Waiting] = []
    private var head = 0
    private var subscribed = false
    private var failure: RedisProtocolError?

    /// A push (message or confirmation): `["message", channel, payload]`, `["smessage", channel, payload]`,
    /// `["pmessage", pattern, channel, payload]`, `["subscribe", channel, count]`, …
    public var onPush: (UnsafePointer<redisReply>) -> Void = { _ in }
    /// An error answer to a (un)subscribe command, e.g. `MOVED 1234 127.0.0.1:7001`.
    public var onSubscriptionError: (String) -> Void = { _ in }

    public init() {
        reader = redisReaderCreate()
    }

    deinit {
        if let reader { redisReaderFree(reader) }
    }

    /// Commands written and not yet answered (subscriptions count once until fully confirmed).
    public var pendingReplies: Int { waiting.count - head }

    /// True once a (un)subscribe command was announced: pushes are expected from then on.
    public var isSubscribed: Bool { subscribed }

    /// Announces a regular command the owner writes now; `completion` runs once with its reply, or with nil
    /// from `failAll()`.
    public func expectReply(_ completion: @escaping (RedisReply?) -> Void) {
        waiting.append(.reply(completion))
    }

    /// Announces a (un)subscribe command (`verb`: `SUBSCRIBE`, `SSUBSCRIBE`, `UNSUBSCRIBE`, …) of `channels`
    /// channels (≥ 1) the owner writes now. Only confirmations named like `verb` settle it: an unsolicited
    /// `sunsubscribe` does not count for a waiting `SSUBSCRIBE`.
    public func expectSubscription(verb: String, channels: Int) {
        subscribed = true
        waiting.append(.subscription(word: Array(verb.lowercased().utf8), remaining: max(1, channels)))
    }

    /// Completes every waiting command with nil (the connection is gone: their outcome is unknown), oldest first.
    public func failAll() {
        let left = waiting[head...]
        waiting = []
        head = 0
        for case .reply(let completion) in left { completion(nil) }
    }

    /// Parses `bytes` and dispatches every complete reply. Errors: `RedisProtocolError` when the stream is
    /// not RESP (from then on every call fails with it).
    public func feed(_ bytes: UnsafeRawBufferPointer) throws(RedisProtocolError) {
        if let failure { throw failure }
        guard let reader else { throw fail("out of memory for the RESP reader") }
        if bytes.count > 0 {
            let rc = redisReaderFeed(reader, bytes.baseAddress!.assumingMemoryBound(to: CChar.self), bytes.count)
            if rc != REDIS_OK { throw fail(readerError(reader)) }
        }
        while true {
            var raw: UnsafeMutableRawPointer?
            guard redisReaderGetReply(reader, &raw) == REDIS_OK else { throw fail(readerError(reader)) }
            guard let raw else { return }
            defer { freeReplyObject(raw) }
            dispatch(UnsafePointer(raw.assumingMemoryBound(to: redisReply.self)))
        }
    }

    /// The kind of a push-shaped array reply, or nil.
    private enum PushKind {
        case message
        case confirmation(UnsafeRawBufferPointer)
    }

    private func pushKind(_ reply: UnsafePointer<redisReply>) -> PushKind? {
        let r = reply.pointee
        guard r.type == REDIS_REPLY_ARRAY, r.elements >= 3, let first = r.element[0], first.pointee.type == REDIS_REPLY_STRING,
            let s = first.pointee.str
        else { return nil }
        let word = UnsafeRawBufferPointer(start: s, count: first.pointee.len)
        switch word.count {
        case 7 where word.elementsEqual("message".utf8), 8 where word.elementsEqual("pmessage".utf8),
            8 where word.elementsEqual("smessage".utf8):
            return .message
        case 9 where word.elementsEqual("subscribe".utf8), 10 where word.elementsEqual("psubscribe".utf8),
            10 where word.elementsEqual("ssubscribe".utf8), 11 where word.elementsEqual("unsubscribe".utf8),
            12 where word.elementsEqual("punsubscribe".utf8), 12 where word.elementsEqual("sunsubscribe".utf8):
            return .confirmation(word)
        default:
            return nil
        }
    }

    private func dispatch(_ reply: UnsafePointer<redisReply>) {
        if subscribed, let kind = pushKind(reply) {
            if case .confirmation(let word) = kind, head < waiting.count, case .subscription(let expected, let remaining) = waiting[head],
                word.elementsEqual(expected)
            {
                if remaining <= 1 { pop() } else { waiting[head] = .subscription(word: expected, remaining: remaining - 1) }
            }
            onPush(reply)
            return
        }
        guard head < waiting.count else {
            // Nothing asked for it and it is no push: a server speaking out of turn. Dropped, not fatal
            // (hiredis's async layer did the same).
            return
        }
        let w = waiting[head]
        pop()
        switch w {
        case .reply(let completion):
            completion(RedisReply(copying: reply))
        case .subscription:
            onSubscriptionError(RedisReply(copying: reply).errorMessage ?? "unexpected answer to a subscription")
        }
    }

    private func pop() {
        head += 1
        if head == waiting.count {
            waiting.removeAll(keepingCapacity: waiting.capacity <= 64)
            head = 0
        } else if head > 64 && head * 2 > waiting.count {
            waiting.removeSubrange(0..<head)
            head = 0
        }
    }

    private func readerError(_ reader: UnsafeMutablePointer<redisReader>) -> String {
        let text = withUnsafeBytes(of: reader.pointee.errstr) { raw in
            String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
        }
        return text.isEmpty ? "protocol error" : text
    }

    private func fail(_ message: String) -> RedisProtocolError {
        let e = RedisProtocolError("RESP: \(message)")
        failure = e
        return e
    }
}
