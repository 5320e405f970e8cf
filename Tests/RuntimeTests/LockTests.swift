import Foundation
import Glibc
import Runtime
import Testing

/// `Lock`: mutual exclusion across real threads, results and errors through `withLock`, try-lock.
@Suite struct LockTests {
    struct Boom: Error, Equatable { let n: Int }

    @Test func guardsANonAtomicReadModifyWriteAcrossThreads() {
        // 4 threads × 20,000 increments of a plain Int: without exclusion, lost updates make the total short
        // (and a TSan build reports the race).
        let lock = Lock(0)
        let threads = 4
        let perThread = 20_000
        DispatchQueue.concurrentPerform(iterations: threads) { _ in
            for _ in 0..<perThread { lock.withLock { $0 += 1 } }
        }
        #expect(lock.withLock { $0 } == threads * perThread)
    }

    @Test func returnsTheBodysResultAndKeepsItsMutation() {
        let lock = Lock<[String]>([])
        let count = lock.withLock { list -> Int in
            list.append("a")
            list.append("b")
            return list.count
        }
        #expect(count == 2)
        #expect(lock.withLock { $0 } == ["a", "b"])
    }

    @Test func releasesTheLockWhenTheBodyThrows() {
        let lock = Lock(1)
        #expect(throws: Boom(n: 1)) {
            try lock.withLock { (v: inout Int) throws(Boom) -> Void in
                v = 2
                throw Boom(n: v - 1)
            }
        }
        // The mutation before the throw stays, and the lock is free again (a held lock would deadlock here).
        #expect(lock.withLock { $0 } == 2)
        #expect(lock.withLockIfAvailable { $0 } == 2)
    }

    @Test func tryLockAnswersNilWhileAnotherThreadHoldsIt() {
        let lock = Lock("x")
        let held = DispatchSemaphore(value: 0)
        let release = DispatchSemaphore(value: 0)
        let done = DispatchSemaphore(value: 0)
        Thread.detachNewThread {
            lock.withLock { _ in
                held.signal()
                release.wait()
            }
            done.signal()
        }
        held.wait()
        #expect(lock.withLockIfAvailable { $0 } == nil)
        release.signal()
        done.wait()
        #expect(lock.withLockIfAvailable { $0 } == "x")
    }

    @Test func aWaiterSeesTheHoldersWritesAfterItReleases() {
        // Happens-before through the lock: the waiter blocks until the holder leaves, then reads its write.
        let lock = Lock<Int?>(nil)
        let held = DispatchSemaphore(value: 0)
        let done = DispatchSemaphore(value: 0)
        Thread.detachNewThread {
            lock.withLock { v in
                held.signal()
                usleep(50_000)
                v = 42
            }
            done.signal()
        }
        held.wait()
        #expect(lock.withLock { $0 } == 42)
        done.wait()
    }

    @Test func aVoidLockOrdersAccessToStateOutsideIt() {
        // `Lock<Void>` guards an ordering (Hub's `interest` lock), not a value: the counter lives outside it.
        // Under scripts/tsan.sh this is the case that once reported a false "Swift access race".
        final class Shared: @unchecked Sendable { var count = 0 }
        let order = Lock<Void>(())
        let shared = Shared()
        DispatchQueue.concurrentPerform(iterations: 4) { _ in
            for _ in 0..<10_000 { order.withLock { _ in shared.count += 1 } }
        }
        #expect(order.withLock { _ in shared.count } == 40_000)
    }
}
