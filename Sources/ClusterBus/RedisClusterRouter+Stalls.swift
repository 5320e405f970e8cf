import Runtime

/// A stalled shard (a paused VM or process, a network path that drops packets without a reset) keeps its TCP
/// connection open and answers nothing: without this, the commands written to it wait as long as the stall
/// lasts, even after the cluster has promoted a replica and new commands go there. So a command connection
/// that has replies pending and reads no byte for ``RedisClusterRouter/stallLimitMs`` is closed: its
/// commands complete with nil (outcome unknown: the caller answers `unavailable`), a slot-map refresh waiting
/// on it moves on to the next node, and the next command opens a fresh connection.
extension RedisClusterRouter {
    /// Arms the stall check of `conn` (a command connection that was just written to) unless it is armed.
    func watchForStall(_ conn: RedisConnection) {
        let id = ObjectIdentifier(conn)
        guard stallLimitMs > 0, stallWatched.insert(id).inserted else { return }
        let readBefore = conn.bytesRead
        _ = loop.runAfter(milliseconds: stallLimitMs) { [weak self, weak conn] in
            guard let self else { return }
            stallWatched.remove(id)
            guard let conn, conn.isOpen, conn.pendingReplies > 0 else { return }
            // Replies still arriving (a long one, or a busy node): progress, look again later.
            guard conn.bytesRead == readBefore else { return watchForStall(conn) }
            conn.close(reason: "no reply for \(stallLimitMs) ms with \(conn.pendingReplies) command(s) pending (node stalled)")
        }
    }
}
