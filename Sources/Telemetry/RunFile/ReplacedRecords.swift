import RunFormat

/// Which records of a run file a later resumed session replaced (`ResumeRule`, docs/FORMAT.md): a
/// record is replaced when a `resume-run` event after it, or the lowest of those, says so.
///
/// A file is read twice: the first pass `note`s every record (the exporters' column scan is that
/// pass), the second asks `keep` for each record in the same order, so that a streaming export
/// writes what the run came to, each step once.
public struct ReplacedRecords {
    private var resumes: [(ordinal: Int, step: Int)] = []
    private var noted = 0
    /// Second pass: the next record's ordinal, the first resume after it, and the lowest resume
    /// step from each resume on.
    private var ordinal = 0
    private var next = 0
    private var lowestFrom: [Int]?

    public init() {}

    /// First pass: one record, in file order.
    public mutating func note(_ record: Record) {
        if case let .event(e) = record, e.kind == .resume_run { resumes.append((noted, e.step)) }
        noted += 1
    }

    /// Second pass: whether `record`, the next in file order, is part of what the run came to.
    public mutating func keep(_ record: Record) -> Bool {
        if lowestFrom == nil {
            var lowest = Int.max
            lowestFrom = resumes.reversed().map { lowest = min(lowest, $0.step); return lowest }.reversed()
        }
        defer { ordinal += 1 }
        while next < resumes.count && resumes[next].ordinal <= ordinal { next += 1 }
        guard next < resumes.count, let bound = lowestFrom?[next] else { return true }
        return !ResumeRule.replaces(record, resumedAt: bound)
    }
}
