import RunFormat

/// The latest evaluations of a run as a reader folds its records, following the resume rule
/// (`ResumeRule`): a session resumed from a checkpoint forgets the evaluations it redoes, and
/// `latest` goes back to the latest one kept. Holds at most `kept` records, which covers a resume
/// from the latest checkpoint at any usual evaluation and checkpoint interval.
public struct RecentEvaluations: Sendable, Equatable {
    public static let kept = 64
    private var records: [EvalRecord] = []

    public init() {}

    /// The latest evaluation that counts (nil: none, or none within the last `kept`).
    public var latest: EvalRecord? { records.last }

    public mutating func add(_ e: EvalRecord) {
        records.append(e)
        if records.count > Self.kept { records.removeFirst() }
    }

    /// A `resume-run` event at `step`: the evaluations it replaces no longer count.
    public mutating func resume(at step: Int) {
        let first = ResumeRule.firstReplacedCompletedStep(resumedAt: step)
        while let last = records.last, last.step >= first { records.removeLast() }
    }
}
