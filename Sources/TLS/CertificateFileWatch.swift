import Glibc

/// One version of a file on disk as `stat(2)` sees it through symlinks: device, inode, size, and the
/// modification and status-change times in nanoseconds. Any of them changing means new contents: an editor
/// or `cp` rewriting in place moves mtime, `mv`/`rename(2)` of a new file moves the inode, and a Kubernetes
/// Secret volume swaps its `..data` symlink (the path then resolves to another inode).
public struct FileStamp: Hashable, Sendable {
    public var device: UInt64
    public var inode: UInt64
    public var size: Int64
    public var modifiedNanoseconds: Int64
    public var changedNanoseconds: Int64

    public init(device: UInt64, inode: UInt64, size: Int64, modifiedNanoseconds: Int64, changedNanoseconds: Int64) {
        self.device = device
        self.inode = inode
        self.size = size
        self.modifiedNanoseconds = modifiedNanoseconds
        self.changedNanoseconds = changedNanoseconds
    }

    /// The stamp of `path` now, or nil when it cannot be `stat`ed (missing, no permission). One syscall.
    public static func of(path: String) -> FileStamp? {
        var st = stat()
        guard stat(path, &st) == 0 else { return nil }
        return FileStamp(
            device: UInt64(st.st_dev), inode: UInt64(st.st_ino), size: Int64(st.st_size),
            modifiedNanoseconds: Int64(st.st_mtim.tv_sec) * 1_000_000_000 + Int64(st.st_mtim.tv_nsec),
            changedNanoseconds: Int64(st.st_ctim.tv_sec) * 1_000_000_000 + Int64(st.st_ctim.tv_nsec))
    }
}

/// Decides when polled certificate and key files have changed and settled, so the node reloads them without
/// a SIGHUP (`--tls-reload-interval`). Sans-I/O: the caller stats the files (`FileStamp.of`) on a timer and
/// feeds the stamps, in a fixed order, to `observe`.
///
/// A change is acted on only once two consecutive polls agree on it: renewal tools write the certificate and
/// the key one after the other (cert-manager, certbot hooks, `cp` of two files), and a reload between the two
/// writes would pair a new certificate with the old key, fail, and log an error for a renewal that is fine.
/// Whatever the reload's outcome, the settled stamps become the baseline: a bad file is tried once (and
/// logged once), and tried again only when it changes again. A missing file is a change like any other (its
/// stamp is nil); the reload then fails and the old certificates stay.
public struct CertificateFileWatch: Sendable, Equatable {
    /// The stamps of the files the serving certificates were loaded from (or last tried).
    public private(set) var baseline: [FileStamp?]
    /// Stamps seen on the last poll that differ from `baseline` and wait for a second look.
    public private(set) var pending: [FileStamp?]?

    /// - Parameter baseline: the stamps when the current certificates were loaded (startup or a SIGHUP).
    public init(baseline: [FileStamp?]) {
        self.baseline = baseline
        self.pending = nil
    }

    /// Feeds one poll's stamps; true when the caller should reload now (the files changed and stayed the
    /// same since the previous poll). `stamps` must list the same files in the same order on every call.
    public mutating func observe(_ stamps: [FileStamp?]) -> Bool {
        if stamps == baseline {
            pending = nil
            return false
        }
        if stamps == pending {
            baseline = stamps
            pending = nil
            return true
        }
        pending = stamps
        return false
    }

    /// A reload happened by other means (SIGHUP): `stamps` are the files it loaded, the new baseline.
    public mutating func reset(to stamps: [FileStamp?]) {
        baseline = stamps
        pending = nil
    }
}
