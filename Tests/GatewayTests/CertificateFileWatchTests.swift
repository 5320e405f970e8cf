import Foundation
import Glibc
import TLS
import Testing

@testable import Gateway

/// `CertificateFileWatch` (the `--tls-reload-interval` poll): what it reloads on, and when.
struct CertificateFileWatchTests {
    func stamp(_ inode: UInt64, mtime: Int64 = 1) -> FileStamp {
        FileStamp(device: 1, inode: inode, size: 100, modifiedNanoseconds: mtime, changedNanoseconds: mtime)
    }

    @Test func aChangeIsReloadedOnceItHasStayedTheSameForOnePoll() {
        let (cert, key) = (stamp(1), stamp(2))
        var watch = CertificateFileWatch(baseline: [cert, key])
        func poll(_ stamps: [FileStamp?]) -> Bool { watch.observe(stamps) }
        #expect(!poll([cert, key]))
        // The certificate is renewed first, the key a moment later (two writes): no reload between them.
        #expect(!poll([stamp(3), key]))
        #expect(!poll([stamp(3), stamp(4)]))
        #expect(poll([stamp(3), stamp(4)]))
        #expect(watch.baseline == [stamp(3), stamp(4)] && watch.pending == nil)
        // Settled: nothing more until the next change.
        #expect(!poll([stamp(3), stamp(4)]))
        #expect(!poll([stamp(3), stamp(4)]))
    }

    @Test func aFileRewrittenInPlaceOrRemovedCountsAsAChangeAndIsTriedOnce() {
        var watch = CertificateFileWatch(baseline: [stamp(1), stamp(2)])
        func poll(_ stamps: [FileStamp?]) -> Bool { watch.observe(stamps) }
        // In-place rewrite: same inode, new mtime.
        #expect(!poll([stamp(1, mtime: 9), stamp(2)]))
        #expect(poll([stamp(1, mtime: 9), stamp(2)]))
        // Removed: nil stamp; tried once (the reload fails and is logged), not on every poll after.
        #expect(!poll([nil, stamp(2)]))
        #expect(poll([nil, stamp(2)]))
        #expect(!poll([nil, stamp(2)]))
        // Put back as it was before the removal: a change again.
        #expect(!poll([stamp(1, mtime: 9), stamp(2)]))
        #expect(poll([stamp(1, mtime: 9), stamp(2)]))
    }

    @Test func aChangeThatIsUndoneBeforeItSettlesIsNoReloadAndSIGHUPResetsTheBaseline() {
        var watch = CertificateFileWatch(baseline: [stamp(1)])
        func poll(_ stamps: [FileStamp?]) -> Bool { watch.observe(stamps) }
        #expect(!poll([stamp(5)]))
        #expect(!poll([stamp(1)]))
        #expect(watch.pending == nil)
        #expect(!poll([stamp(6)]))
        // SIGHUP reloaded what is there now: the pending change is not reloaded a second time.
        watch.reset(to: [stamp(6)])
        #expect(!poll([stamp(6)]))
        #expect(!poll([stamp(6)]))
    }

    @Test func stampsFollowTheFileOnDisk() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("sb-stamp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("a.pem").path
        #expect(FileStamp.of(path: path) == nil)
        try Data("one".utf8).write(to: URL(fileURLWithPath: path))
        let first = try #require(FileStamp.of(path: path))
        #expect(FileStamp.of(path: path) == first)
        // A new file renamed over it (how renewal tools install files): another inode.
        let next = dir.appendingPathComponent("b.pem").path
        try Data("two".utf8).write(to: URL(fileURLWithPath: next))
        #expect(rename(next, path) == 0)
        #expect(FileStamp.of(path: path) != first)
        // Through a symlink swap (a Kubernetes Secret volume's ..data): the target's stamp.
        let link = dir.appendingPathComponent("link.pem").path
        #expect(symlink(path, link) == 0)
        #expect(FileStamp.of(path: link) == FileStamp.of(path: path))
    }

    @Test func theFlagParsesAndZeroMeansSIGHUPOnly() throws {
        #expect(try Config.parse(arguments: [], environment: [:]).tlsReloadIntervalMs == 10_000)
        #expect(try Config.parse(arguments: ["--tls-reload-interval", "0"], environment: [:]).tlsReloadIntervalMs == 0)
        #expect(try Config.parse(arguments: [], environment: ["SWITCHBOARD_TLS_RELOAD_INTERVAL": "250ms"]).tlsReloadIntervalMs == 250)
        #expect(throws: Config.Invalid.self) { try Config.parse(arguments: ["--tls-reload-interval", "5"], environment: [:]) }
    }
}
