import Foundation
import Telemetry

/// What leaving the dashboard prints: the run summary `--no-tui` prints, read from the run file.
enum ExitSummary {
    static func print(runFile: String) {
        var skipped = 0
        do {
            var summary = try RunSummary.read(path: runFile) { _ in skipped += 1 }
            summary.skippedLines = skipped
            for line in summary.lines() { Swift.print(line) }
        } catch {
            Console.error("gradflow: no summary: \(error)\n")
        }
    }
}
