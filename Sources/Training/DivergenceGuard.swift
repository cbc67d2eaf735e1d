import Foundation
import Refinement
import Telemetry

/// What the trainer does when a step diverges (`--on-divergence`).
public enum DivergencePolicy: String, Sendable, CaseIterable {
    /// Restore the rolling snapshot, skip the batches since it, undo changes made since it.
    case rollback
    /// Drop the bad batch: its backward pass and update are not taken (detected on the loss,
    /// before backward); a non-finite gradient with a finite loss, or 3 bad batches in a row,
    /// are rolled back.
    case skip
    /// End the run as failed.
    case stop
    /// No guard and no rolling snapshot; a non-finite loss still ends the run.
    case off
}

/// The divergence rule and the rolling snapshot's interval (docs/METHOD.md, "Divergence guard").
public struct DivergenceSettings: Sendable, Equatable {
    public var policy: DivergencePolicy = .rollback
    /// Steps between rolling snapshots.
    public var snapshotEvery = 100
    /// A loss is a spike when it exceeds the median of the last `window` losses by `mads`
    /// median absolute deviations (the deviation floored at 1 % of the median and at
    /// `minimumDeviation` nats, so that a task learned to a loss near zero does not call a
    /// 0.1-nat bump a divergence).
    public var window = 50
    public var mads = 10.0
    public var minimumDeviation = 0.02
    /// Rollbacks to the same snapshot before the run gives up (and, with `skip`, batches
    /// dropped in a row before the guard rolls back).
    public var maxRollbacksPerSnapshot = 3

    public init() {}

    /// What is wrong with `--snapshot-every n`, worded for the flag (nil when it is fine).
    public static func snapshotEveryProblem(_ n: Int) -> String? {
        n >= 1 ? nil : "--snapshot-every must be at least 1, got \(n)"
    }
}

/// The guard's state: recent losses, the last good snapshot and the changes made since it.
struct DivergenceGuard {
    let settings: DivergenceSettings
    private var losses: RingBuffer
    /// The loss window when the snapshot was taken: a rollback restores it with the state, so the
    /// restored model is judged against the losses of its own time, not those of the later steps
    /// it undid (after a task's loss fell from 2 to 0.03, the state from before the fall would
    /// otherwise "diverge" at once, every time).
    private var windowAtSnapshot: RingBuffer
    var snapshot: TrainingState?
    /// Accepted changes since the snapshot, as "context.long 1 → 4 (step 200)".
    var changesSinceSnapshot: [String] = []
    /// Rollbacks to the current snapshot.
    var rollbacksToSnapshot = 0
    /// Batches dropped in a row by `--on-divergence skip`.
    var consecutiveSkips = 0

    init(settings: DivergenceSettings) {
        self.settings = settings
        losses = RingBuffer(capacity: settings.window)
        windowAtSnapshot = losses
    }

    var active: Bool { settings.policy != .off }

    /// Why this step diverged, or nil when it is healthy. A healthy loss joins the window.
    mutating func check(loss: Double, gradNorm: Double) -> String? {
        if let reason = verdict(loss: loss, gradNorm: gradNorm) { return reason }
        losses.append(loss)
        return nil
    }

    /// Keeps the loss window with a new snapshot.
    mutating func snapshotTaken() { windowAtSnapshot = losses }

    /// Puts back the loss window of the snapshot a rollback restores.
    mutating func rolledBack() { losses = windowAtSnapshot }

    /// The rule without recording the loss.
    func verdict(loss: Double, gradNorm: Double) -> String? {
        if !loss.isFinite { return "loss is \(loss)" }
        if !gradNorm.isFinite { return "gradient norm is \(gradNorm)" }
        guard losses.count >= settings.window, let limit = threshold else { return nil }
        if loss > limit {
            return String(format: "loss %.4f > %.4f (median of the last %d + %g MAD)", loss, limit, settings.window, settings.mads)
        }
        return nil
    }

    /// median + k · max(MAD, 0.01 · median, minimumDeviation) of the window.
    var threshold: Double? {
        guard let median = losses.median, let mad = RingBuffer.median(losses.unordered.map({ abs($0 - median) })) else { return nil }
        return median + settings.mads * max(mad, 0.01 * abs(median), settings.minimumDeviation)
    }
}
