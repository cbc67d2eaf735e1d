/// The format's rule for a resumed session (docs/FORMAT.md, "A resumed session replaces the steps
/// after its checkpoint"), in one place for every reader: a `resume-run` event at step S says that
/// the steps from S on were done again, so what an earlier session recorded for them no longer
/// counts — step records from index S, evaluations and checkpoints after S (and whatever else is
/// tied to a completed step, such as samples), and an earlier `end` record. Events and system
/// records stay, as the log of what happened.
///
/// Readers that keep histories drop them from the thresholds below; readers that look at one
/// record at a time ask `replaces`.
public enum ResumeRule {
    /// The lowest step index whose step record a resume from the checkpoint at `step` replaces.
    public static func firstReplacedStepIndex(resumedAt step: Int) -> Int { step }

    /// The lowest step at which an evaluation, checkpoint or sample recorded before a resume from
    /// the checkpoint at `step` is replaced: the state after `step` steps is the checkpoint's own.
    public static func firstReplacedCompletedStep(resumedAt step: Int) -> Int { step + 1 }

    /// Whether the resumed session replaces `record`, written before a `resume-run` event at `step`.
    public static func replaces(_ record: Record, resumedAt step: Int) -> Bool {
        switch record {
        case let .step(s): return s.step >= firstReplacedStepIndex(resumedAt: step)
        case let .eval(e): return e.step >= firstReplacedCompletedStep(resumedAt: step)
        case let .checkpoint(c): return c.step >= firstReplacedCompletedStep(resumedAt: step)
        case .end: return true
        case .event, .system: return false
        }
    }
}
