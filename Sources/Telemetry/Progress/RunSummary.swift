import RunFormat

/// What a run came to, folded from its records: printed at the end of `--no-tui` training and of
/// `gradflow replay --no-tui`, and by `--summary-only`.
public struct RunSummary {
    public private(set) var header: RunHeader?
    /// The step records that count, in file order: a resumed session drops those it does again
    /// (docs/FORMAT.md), so the figures below are the run's as it came to be.
    private var steps: [(index: Int, loss: Double, tokensPerSecond: Double, spike: Bool, guardFallbacks: Int32)] = []
    public var stepRecords: Int { steps.count }
    /// Steps completed: one past the last step record's index, or an eval/end record's step.
    public private(set) var stepsDone = 0
    public var firstLoss: Double? { steps.first?.loss }
    public var finalLoss: Double? { steps.last?.loss }
    public var minLoss: Double? { steps.lazy.map(\.loss).filter(\.isFinite).min() }
    public var lastEval: EvalRecord? { evaluations.latest }
    /// Lowest loss of the first validation domain, and its step.
    public private(set) var bestValidation: (loss: Double, step: Int, domain: String)?
    private var evaluations = RecentEvaluations()
    /// Each evaluation's first domain, so that a resumed session can forget the ones it redoes.
    private var firstDomainLosses: [(loss: Double, step: Int, domain: String)] = []
    public private(set) var eventCount = 0
    /// The first `maxListedEvents` events.
    public private(set) var events: [EventRecord] = []
    public static let maxListedEvents = 20
    public var spikes: Int { steps.lazy.filter(\.spike).count }
    public private(set) var guardFallbacks = 0
    /// The steps of the checkpoint records that count.
    private var checkpointSteps: [Int] = []
    public var checkpoints: Int { checkpointSteps.count }
    public private(set) var end: EndRecord?
    /// Seconds from the start to the last record.
    public private(set) var duration = 0.0
    /// Step records an observer missed (set by the caller from its subscription).
    public var droppedRecords = 0
    /// Lines the reader skipped (set by the caller).
    public var skippedLines = 0

    public init(header: RunHeader? = nil) { self.header = header }

    /// Reads a run file (or run directory) to its end and folds every record: what
    /// `gradflow replay --summary-only` prints. Step records are read as scalars only (their
    /// arrays are checked, not built: a summary uses none). `onIssue` hears about each skipped line.
    public static func read(path: String, follow: RunFileReader.Follow? = nil,
                            onIssue: ((ReadIssue) -> Void)? = nil) throws -> RunSummary {
        let reader = try RunFileReader(path: path, follow: follow)
        reader.onIssue = onIssue
        reader.stepDetail = .scalars
        var summary = RunSummary(header: reader.header)
        while let record = try reader.next() { summary.add(record) }
        summary.skippedLines = reader.issueCount
        return summary
    }

    public mutating func setHeader(_ h: RunHeader) { header = h }

    /// The largest resident memory a system record reported (nil: the run has none).
    public var peakResidentBytes: Int?
    public var meanTokensPerSecond: Double {
        let finite = steps.lazy.map(\.tokensPerSecond).filter(\.isFinite)
        return steps.isEmpty ? 0 : finite.reduce(0, +) / Double(steps.count)
    }

    public mutating func add(_ record: Record) {
        duration = max(duration, record.t)
        switch record {
        case let .step(s):
            stepsDone = max(stepsDone, s.stepsCompleted)
            steps.append((s.step, s.loss, s.tokensPerSecond, s.spike, Int32(clamping: s.guardFallbacks)))
            guardFallbacks = max(guardFallbacks, s.guardFallbacks)
        case let .eval(e):
            stepsDone = max(stepsDone, e.step)
            evaluations.add(e)
            if let d = e.domains.first, d.loss.isFinite {
                firstDomainLosses.append((d.loss, e.step, d.name))
                if d.loss < (bestValidation?.loss ?? .infinity) { bestValidation = (d.loss, e.step, d.name) }
            }
        case let .event(e):
            if e.kind == .resume_run {
                // A session resumed from the checkpoint at e.step does the later steps again: what
                // an earlier session recorded after it no longer counts (`ResumeRule`).
                let firstStep = ResumeRule.firstReplacedStepIndex(resumedAt: e.step)
                let firstCompleted = ResumeRule.firstReplacedCompletedStep(resumedAt: e.step)
                stepsDone = min(stepsDone, e.step)
                while let last = steps.last, last.index >= firstStep { steps.removeLast() }
                // The guard's count is cumulative in the step records: the last kept step's.
                guardFallbacks = steps.last.map { Int($0.guardFallbacks) } ?? 0
                evaluations.resume(at: e.step)
                checkpointSteps.removeAll { $0 >= firstCompleted }
                end = nil
                firstDomainLosses.removeAll { $0.step >= firstCompleted }
                if let best = bestValidation, best.step >= firstCompleted { bestValidation = firstDomainLosses.min { $0.loss < $1.loss } }
            }
            eventCount += 1
            if events.count < RunSummary.maxListedEvents { events.append(e) }
        case let .checkpoint(c):
            checkpointSteps.append(c.step)
        case let .system(s):
            peakResidentBytes = max(peakResidentBytes ?? 0, s.residentBytes)
        case let .end(e):
            stepsDone = max(stepsDone, e.step)
            end = e
        }
    }

    /// The summary as printed.
    public func lines() -> [String] {
        var out: [String] = []
        if let h = header {
            out.append("summary  run \(h.runName)  preset \(h.preset)  \(Format.compact(Double(h.parameters))) parameters  seed \(h.seed)")
        } else {
            out.append("summary")
        }
        let planned = header.map { " of \($0.totalSteps)" } ?? ""
        let ending = end.map { " (\($0.reason.rawValue)\($0.message.isEmpty ? "" : ": \($0.message)"))" } ?? " (no end record)"
        out.append("  steps       \(stepsDone)\(planned) in \(Format.clock(duration))\(ending), \(stepRecords) step records, mean \(Format.compact(meanTokensPerSecond)) tok/s")
        if let f = firstLoss, let l = finalLoss {
            out.append("  train loss  \(Format.fixed(f, 4)) -> \(Format.fixed(l, 4)) (final), lowest \(Format.fixed(minLoss ?? .nan, 4))")
        }
        if let e = lastEval {
            out.append("  validation  " + e.domains.map { "\($0.name) \(Format.fixed($0.loss, 4)) nats \(Format.fixed($0.bitsPerByte, 3)) bpb" }.joined(separator: ", ") + " (step \(e.step))")
        }
        if let b = bestValidation {
            out.append("  best val    \(Format.fixed(b.loss, 4)) nats \(Format.fixed(Format.bitsPerByte(b.loss), 3)) bpb at step \(b.step) (\(b.domain))")
        }
        out.append("  spikes \(spikes), guard fallbacks \(guardFallbacks), checkpoints \(checkpoints)"
                   + (droppedRecords > 0 ? ", \(droppedRecords) step records not seen" : "")
                   + (skippedLines > 0 ? ", \(skippedLines) bad lines skipped" : ""))
        if let peak = peakResidentBytes { out.append("  memory      peak resident \(Format.bytes(peak))") }
        out.append("  events      \(eventCount)")
        for e in events { out.append("    step \(e.step): " + describeEvent(e, header: header)) }
        if eventCount > events.count { out.append("    ... and \(eventCount - events.count) more") }
        return out
    }
}
