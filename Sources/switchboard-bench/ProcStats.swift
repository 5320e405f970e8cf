import Foundation
import Gateway
import Glibc

/// Figures about a process from /proc (the gateway's RSS and CPU, the bench's own CPU).
enum ProcStats {
    /// `VmRSS` of /proc/PID/status in KiB, nil when the process is gone.
    static func rssKiB(pid: Int32) -> Int? {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix("VmRSS:") {
            return Int(line.dropFirst(6).split(whereSeparator: { $0 == " " || $0 == "\t" }).first ?? "")
        }
        return nil
    }

    /// utime + stime of /proc/PID/stat in clock ticks (every thread), nil when the process is gone.
    static func cpuTicks(pid: Int32) -> UInt64? {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = text.lastIndex(of: ")") else { return nil }
        // Fields after "comm)": state(3) ppid(4) … utime(14) stime(15); index 0 here is field 3.
        let fields = text[text.index(after: close)...].split(separator: " ")
        guard fields.count > 12, let u = UInt64(fields[11]), let s = UInt64(fields[12]) else { return nil }
        return u + s
    }

    static let ticksPerSecond = Double(sysconf(Int32(_SC_CLK_TCK)))
}

/// CPU use of a set of processes between `init` and `percent()`: (utime+stime delta) / wall time, as a
/// percentage of one core (so 200 % = both cores busy).
struct CPUMeter {
    private let pids: [Int32]
    private let startTicks: UInt64
    private let startNs: UInt64

    init(pids: [Int32]) {
        self.pids = pids
        startTicks = pids.compactMap { ProcStats.cpuTicks(pid: $0) }.reduce(0, +)
        startNs = monotonicNanoseconds()
    }

    /// nil when no process could be read.
    func percent() -> Double? {
        let ticks = pids.compactMap { ProcStats.cpuTicks(pid: $0) }
        guard !ticks.isEmpty else { return nil }
        let wall = Double(monotonicNanoseconds() - startNs) / 1e9
        guard wall > 0 else { return nil }
        let used = Double(ticks.reduce(0, +) &- startTicks) / ProcStats.ticksPerSecond
        return used / wall * 100
    }
}

