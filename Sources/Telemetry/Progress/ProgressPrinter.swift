import RunFormat
import Foundation

/// Prints progress lines for what a bus carries, on its own thread, then the run summary.
///
/// The bus observer around `ProgressFormatter` and `RunSummary`; used by `gradflow train --no-tui`
/// and `gradflow replay --no-tui`, so both print the same lines. `consume` is the same logic without
/// the bus, for callers that read records themselves.
public final class ProgressPrinter: @unchecked Sendable {
    private var formatter: ProgressFormatter
    public private(set) var summary = RunSummary()
    private let output: ((String) -> Void)?
    /// Whether standard output was found gone (see `outputClosed`).
    public private(set) var outputLost = false
    /// Called once, on the printing thread, when standard output is gone (a closed pipe, a hung-up
    /// terminal); the lines after it are dropped. Not called with an `output` of the caller's.
    public var outputClosed: (() -> Void)?
    private var subscription: BusSubscription?
    private var thread: Thread?
    private let done = DispatchSemaphore(value: 0)
    private let stop = StopFlag()
    private var printedHeader = false

    /// `output` receives one line at a time (default: standard output, flushed per line, through
    /// `Console.writeLine`).
    public init(interval: Int? = nil, output: ((String) -> Void)? = nil) {
        formatter = ProgressFormatter(interval: interval)
        self.output = output
    }

    private func emit(_ line: String) {
        if let output {
            output(line)
        } else if !outputLost && !Console.writeLine(line) {
            outputLost = true
            outputClosed?()
        }
    }

    /// Prints the header lines.
    public func consume(header: RunHeader) {
        guard !printedHeader else { return }
        printedHeader = true
        summary.setHeader(header)
        for line in formatter.setHeader(header) { emit(line) }
    }

    /// Prints what `record` calls for and adds it to the summary.
    public func consume(_ record: Record) {
        summary.add(record)
        for line in formatter.lines(for: record) { emit(line) }
    }

    /// Prints the summary lines.
    public func printSummary(dropped: Int = 0, skippedLines: Int = 0) {
        summary.droppedRecords = dropped
        summary.skippedLines = skippedLines
        for line in summary.lines() { emit(line) }
    }

    /// Starts printing what `bus` carries, on a thread of its own.
    public func attach(to bus: RecordBus, capacity: Int = 1 << 16) {
        let sub = bus.subscribe(name: "progress", capacity: capacity)
        subscription = sub
        let t = Thread { [self] in
            while true {
                if !printedHeader, let h = sub.header { consume(header: h) }
                let batch = sub.wait(timeout: 0.1, max: 1024)
                if !printedHeader, let h = sub.header { consume(header: h) }
                for r in batch { consume(r) }
                if batch.isEmpty && (sub.isFinished || stop.isSet) { break }
            }
            done.signal()
        }
        t.name = "gradflow.progress"
        thread = t
        t.start()
    }

    /// Waits for the bus to close (or, with `now`, stops after what has arrived), then prints the
    /// summary.
    public func finish(now: Bool = false, skippedLines: Int = 0) {
        if let sub = subscription {
            if now { stop.set() }
            done.wait()
            printSummary(dropped: sub.dropped, skippedLines: skippedLines)
        } else {
            printSummary(skippedLines: skippedLines)
        }
    }
}
