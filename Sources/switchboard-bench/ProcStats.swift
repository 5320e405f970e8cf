import Foundation
import Glibc
import Runtime

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
            let close = text.lastIndex(of: ")")
        else { return nil }
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

extension ProcStats {
    /// Busy time of the whole machine (all cores) from /proc/stat, in clock ticks: everything but idle and iowait.
    static func machineBusyTicks() -> UInt64? {
        guard let text = try? String(contentsOfFile: "/proc/stat", encoding: .utf8),
            let line = text.split(separator: "\n").first, line.hasPrefix("cpu ")
        else { return nil }
        let v = line.split(separator: " ").dropFirst().compactMap { UInt64($0) }
        guard v.count >= 5 else { return nil }
        return v.reduce(0, +) - v[3] - v[4]
    }
}

/// CPU use over a measured phase: the gateway, the bench (with its child processes), and everything else
/// on the machine (other processes compete with the two pinned ones and distort the figures).
struct CPUSample {
    var gateway: Double?
    var bench: Double?
    var other: Double?

    func add(to r: inout Report, suffix: String = "") {
        if let gateway { r.add("gateway_cpu\(suffix)_percent", gateway, unit: "% of one core", decimals: 1) }
        if let bench { r.add("bench_cpu\(suffix)_percent", bench, unit: "% of one core", decimals: 1) }
        if let other { r.add("other_cpu\(suffix)_percent", other, unit: "% of one core (other processes)", decimals: 1) }
    }
}

/// Starts measuring at init; `read()` gives the CPU use since then.
struct CPUMeters {
    private let gateway: CPUMeter?
    private let bench: CPUMeter
    private let machineStart: UInt64?
    private let startNs = monotonicNanoseconds()

    init(gatewayPid: Int32?, benchPids: [Int32]) {
        gateway = gatewayPid.map { CPUMeter(pids: [$0]) }
        bench = CPUMeter(pids: benchPids)
        machineStart = ProcStats.machineBusyTicks()
    }

    func read() -> CPUSample {
        var s = CPUSample(gateway: gateway?.percent(), bench: bench.percent())
        if let a = machineStart, let b = ProcStats.machineBusyTicks() {
            let wall = Double(monotonicNanoseconds() - startNs) / 1e9
            let machine = Double(b &- a) / ProcStats.ticksPerSecond / max(wall, 1e-9) * 100
            s.other = max(0, machine - (s.gateway ?? 0) - (s.bench ?? 0))
        }
        return s
    }
}
