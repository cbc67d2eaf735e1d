import Foundation
import Telemetry

/// Reads this process's figures (CPU time, resident memory, threads) for the run file's `system`
/// records, at most once per `interval` seconds of wall time. Linux: /proc/self; elsewhere the
/// memory and thread figures are 0.
final class SystemMonitor {
    let interval: Double
    let ranks: Int
    private var lastWall: Double?
    private var lastCPU = 0.0

    init(interval: Double = SystemRecord.interval, ranks: Int) {
        self.interval = interval
        self.ranks = ranks
    }

    /// The figures when `interval` has passed since the last ones (the first call always reads).
    func sample(step: Int, t: Double) -> SystemRecord? {
        let wall = Date().timeIntervalSince1970
        if let last = lastWall, wall - last < interval { return nil }
        let cpu = Self.cpuSeconds()
        let percent = lastWall.map { cpu > lastCPU ? (cpu - lastCPU) / max(wall - $0, 1e-6) * 100 : 0 } ?? 0
        lastWall = wall
        lastCPU = cpu
        return SystemRecord(step: step, t: t, cpuPercent: percent, residentBytes: Self.residentBytes(),
                            threads: Self.threads(), ranks: ranks)
    }

    /// User + system CPU seconds of this process so far.
    static func cpuSeconds() -> Double {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        func seconds(_ t: timeval) -> Double { Double(t.tv_sec) + Double(t.tv_usec) / 1e6 }
        return seconds(usage.ru_utime) + seconds(usage.ru_stime)
    }

    /// Resident memory (the second field of /proc/self/statm, in pages).
    static func residentBytes() -> Int {
        guard let text = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return 0 }
        let fields = text.split(separator: " ")
        guard fields.count > 1, let pages = Int(fields[1]) else { return 0 }
        return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
    }

    /// Threads of this process (entries of /proc/self/task).
    static func threads() -> Int {
        (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/task").count) ?? 0
    }
}

extension Trainer {
    /// Starts writing `system` records (rank 0): once at the first step boundary, then at most
    /// every `interval` seconds (also while paused).
    public func recordSystemFigures(interval: Double = 5) {
        systemMonitor = SystemMonitor(interval: interval, ranks: collective.size)
    }

    func publishSystemFigures() {
        guard let monitor = systemMonitor, let record = monitor.sample(step: step, t: elapsed) else { return }
        bus.publish(.system(record))
    }
}
