import CHiredis
import CLinux
import Glibc
import Runtime

/// hiredis's reply callback type, spelled as a C function pointer (`redisCallbackFn` is a function *type*
/// typedef, which Swift imports as a Swift function type).
typealias RedisCallbackC = @convention(c) (UnsafeMutablePointer<redisAsyncContext>?, UnsafeMutableRawPointer?, UnsafeMutableRawPointer?) -> Void

/// What a connection reports to its owner, on the bus loop thread.
protocol RedisAsyncConnectionDelegate: AnyObject {
    /// hiredis freed the context (refused, reset, EOF, protocol error or our own `close()`). Called once,
    /// from inside hiredis's teardown: the owner must not call back into this connection.
    func redisConnectionClosed(_ connection: RedisAsyncConnection, reason: String)
    /// A pub/sub reply on a subscriber connection (`subscribe`, `unsubscribe`, `message` arrays). `reply` is
    /// valid only during the call.
    func redisConnection(_ connection: RedisAsyncConnection, pushed reply: UnsafePointer<redisReply>)
}

/// One hiredis 0.14 async context driven by a `EventLoop` through hiredis's adapter hooks
/// (`addRead`, `delRead`, `addWrite`, `delWrite`, `cleanup`); never a blocking call.
///
/// Lifecycle (STYLE.md, hiredis points 2–6):
/// - `ev.data` holds this object retained; `ev.cleanup`, the last hook hiredis calls before freeing the
///   context, releases it. `onDisconnect` is not used: it runs after `cleanup` and only for contexts that
///   had connected. `ac.data` points here unretained, for the pub/sub callback.
/// - Each command's `privdata` is a retained `ReplyBox`; its callback runs exactly once, with the copied
///   reply or with nil when the context is torn down, and releases the box.
/// - `redisAsyncHandleRead` may free the context: `context` is nil afterwards and the write half of the
///   same event is skipped.
/// - Writes are corked per loop tick: `addWrite` on a connected context schedules one `atTickEnd` flush
///   that calls `redisAsyncHandleWrite` directly, so commands queued in one iteration leave in one
///   `write(2)`; `EPOLLOUT` is armed only while connecting or when the kernel buffer was full.
/// - `close()` frees the context from a fresh loop task, never from inside a hiredis callback.
///
/// Loop-confined: every method runs on the bus loop thread.
final class RedisAsyncConnection {
    let loop: EventLoop
    /// `commands` or `subscriber`, for logs.
    let role: String
    private(set) var context: UnsafeMutablePointer<redisAsyncContext>?
    private let fd: CInt
    private var reading = false
    private var writing = false
    private var pollRead = false
    private var pollWrite = false
    private var flushScheduled = false
    private var closeScheduled = false
    weak var delegate: RedisAsyncConnectionDelegate?
    /// Commands sent whose reply has not arrived yet.
    private(set) var pendingReplies = 0

    private init(loop: EventLoop, role: String, context: UnsafeMutablePointer<redisAsyncContext>) {
        self.loop = loop
        self.role = role
        self.context = context
        self.fd = context.pointee.c.fd
    }

    /// Starts a non-blocking connect to `host` (a numeric address: resolve names off the loop first) and
    /// attaches the adapter. Errors: hiredis's error string (e.g. an invalid address).
    static func open(host: String, port: Int, loop: EventLoop, role: String) -> Result<RedisAsyncConnection, RedisConnectError> {
        guard let ac = redisAsyncConnect(host, CInt(port)) else { return .failure(RedisConnectError("out of memory")) }
        if ac.pointee.err != 0 {
            let message = ac.pointee.errstr.map { String(cString: $0) } ?? "connect failed"
            redisAsyncFree(ac)
            return .failure(RedisConnectError(message))
        }
        let conn = RedisAsyncConnection(loop: loop, role: role, context: ac)
        ac.pointee.data = Unmanaged.passUnretained(conn).toOpaque()
        ac.pointee.ev.data = Unmanaged.passRetained(conn).toOpaque()
        ac.pointee.ev.addRead = { RedisAsyncConnection.from($0).setReading(true) }
        ac.pointee.ev.delRead = { RedisAsyncConnection.from($0).setReading(false) }
        ac.pointee.ev.addWrite = { RedisAsyncConnection.from($0).setWriting(true) }
        ac.pointee.ev.delWrite = { RedisAsyncConnection.from($0).setWriting(false) }
        ac.pointee.ev.cleanup = { privdata in
            Unmanaged<RedisAsyncConnection>.fromOpaque(privdata!).takeRetainedValue().didCleanup()
        }
        return .success(conn)
    }

    var isOpen: Bool { context != nil }

    /// True once the TCP connect completed (hiredis's `REDIS_CONNECTED`).
    var isConnected: Bool {
        guard let ac = context else { return false }
        return ac.pointee.c.flags & REDIS_CONNECTED != 0
    }

    // MARK: - Commands

    /// Queues `command`; `completion` runs once on the loop thread with the reply, or with nil when the
    /// connection goes away first. Returns false (and does not call `completion`) when the context is gone
    /// or refuses commands (disconnecting).
    @discardableResult
    func send(_ command: RedisCommand, _ completion: @escaping (RedisReply?) -> Void) -> Bool {
        precondition(command.isComplete, "\(command.name): fewer arguments than announced")
        guard let ac = context else { return false }
        let box = Unmanaged.passRetained(ReplyBox(connection: self, completion)).toOpaque()
        let rc = command.withFormatted { text, length in
            redisAsyncFormattedCommand(ac, replyTrampoline, box, text, length)
        }
        guard rc == REDIS_OK else {
            Unmanaged<ReplyBox>.fromOpaque(box).release()
            return false
        }
        pendingReplies += 1
        return true
    }

    /// Sends `SUBSCRIBE` for `channels`; confirmations and messages arrive through the delegate's `pushed`.
    @discardableResult
    func subscribe(_ channels: [String]) -> Bool {
        pubsub("SUBSCRIBE", channels, callback: pushTrampoline)
    }

    /// Sends `UNSUBSCRIBE` for `channels`; each confirmation arrives through the delegate's `pushed`.
    @discardableResult
    func unsubscribe(_ channels: [String]) -> Bool {
        pubsub("UNSUBSCRIBE", channels, callback: nil)
    }

    private func pubsub(_ verb: String, _ channels: [String], callback: RedisCallbackC?) -> Bool {
        guard let ac = context, !channels.isEmpty else { return false }
        var cmd = RedisCommand(verb, argumentCount: channels.count + 1, capacity: channels.reduce(0) { $0 + $1.utf8.count })
        for ch in channels { cmd.append(ch) }
        let rc = cmd.withFormatted { text, length in
            redisAsyncFormattedCommand(ac, callback, nil, text, length)
        }
        return rc == REDIS_OK
    }

    fileprivate func replyArrived() { pendingReplies -= 1 }

    // MARK: - Closing

    /// Frees the context from a fresh loop task (never inside a hiredis callback). Pending commands complete
    /// with nil, then the delegate hears `redisConnectionClosed`.
    func close() {
        guard context != nil, !closeScheduled else { return }
        closeScheduled = true
        _ = loop.runAfter(milliseconds: 0) { [self] in
            if let ac = context { redisAsyncFree(ac) }
        }
    }

    private func didCleanup() {
        var reason = "connection closed"
        if let ac = context, ac.pointee.err != 0, let e = ac.pointee.errstr {
            reason = String(cString: e)
        }
        context = nil
        reading = false
        writing = false
        if pollRead || pollWrite {
            pollRead = false
            pollWrite = false
            try? loop.watch(fd: fd, readable: false, writable: false) { _, _ in }
        }
        delegate?.redisConnectionClosed(self, reason: reason)
    }

    // MARK: - Adapter hooks

    fileprivate static func from(_ privdata: UnsafeMutableRawPointer?) -> RedisAsyncConnection {
        Unmanaged<RedisAsyncConnection>.fromOpaque(privdata!).takeUnretainedValue()
    }

    private func setReading(_ on: Bool) {
        guard reading != on else { return }
        reading = on
        syncPoll()
    }

    private func setWriting(_ on: Bool) {
        writing = on
        if on {
            if isConnected && !pollWrite {
                // Cork: one write for everything queued in this loop iteration.
                if !flushScheduled {
                    flushScheduled = true
                    loop.atTickEnd { [self] in flushNow() }
                }
                return
            }
        }
        syncPoll()
    }

    private func flushNow() {
        flushScheduled = false
        guard writing, let ac = context else { return }
        redisAsyncHandleWrite(ac)
        // Still wanting to write (socket buffer full) → wait for EPOLLOUT.
        if context != nil, writing { syncPoll() }
    }

    /// Aligns the epoll interest with what hiredis asked for: read when asked; write only while connecting
    /// or when a tick-end flush could not empty the buffer.
    private func syncPoll() {
        guard context != nil else { return }
        let wantRead = reading
        let wantWrite = writing && (!isConnected || pollWrite || !flushScheduled)
        guard wantRead != pollRead || wantWrite != pollWrite else { return }
        pollRead = wantRead
        pollWrite = wantWrite
        try? loop.watch(fd: fd, readable: wantRead, writable: wantWrite) { [self] readable, writable in
            handleEvent(readable: readable, writable: writable)
        }
    }

    private func handleEvent(readable: Bool, writable: Bool) {
        if readable, let ac = context { redisAsyncHandleRead(ac) }
        // HandleRead may have freed the context.
        if writable, let ac = context { redisAsyncHandleWrite(ac) }
    }

    fileprivate func push(_ reply: UnsafePointer<redisReply>) {
        delegate?.redisConnection(self, pushed: reply)
    }
}

/// A connect that failed before any I/O (bad address, out of memory).
struct RedisConnectError: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}

/// Holds a command's completion across the C boundary (`privdata`), retained until its callback runs.
private final class ReplyBox {
    unowned(unsafe) let connection: RedisAsyncConnection
    let completion: (RedisReply?) -> Void
    init(connection: RedisAsyncConnection, _ completion: @escaping (RedisReply?) -> Void) {
        self.connection = connection
        self.completion = completion
    }
}

/// Regular command replies: copy, release the box, complete.
private let replyTrampoline: RedisCallbackC = { _, reply, privdata in
    guard let privdata else { return }
    let box = Unmanaged<ReplyBox>.fromOpaque(privdata).takeRetainedValue()
    box.connection.replyArrived()
    if let r = reply?.assumingMemoryBound(to: redisReply.self) {
        box.completion(RedisReply(copying: r))
    } else {
        box.completion(nil)
    }
}

/// Pub/sub replies on the subscriber connection (stored per channel by hiredis; privdata unused).
/// A nil reply is hiredis tearing the context down: the cleanup hook reports that.
private let pushTrampoline: RedisCallbackC = { ac, reply, _ in
    guard let ac, let data = ac.pointee.data, let r = reply?.assumingMemoryBound(to: redisReply.self) else { return }
    Unmanaged<RedisAsyncConnection>.fromOpaque(data).takeUnretainedValue().push(UnsafePointer(r))
}
