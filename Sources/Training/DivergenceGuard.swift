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

/// What the guard does when divergence comes back: `repeatCount` rollbacks within
/// `repeatWindow` steps (`--on-repeated-divergence`).
public enum RepeatedDivergencePolicy: String, Sendable, CaseIterable {
    /// Lower the learning rate (× `lrBackoff`, an `lr` event) and go on; give up after
    /// `maxLowerings` lowerings.
    case lowerLR = "lower-lr"
    /// End the run as failed, naming the rate and the step.
    case stop
}

/// The guard's settings, defaults and the help of its flags, in one place (docs/METHOD.md §6b;
/// `gradflow train` and `gradflow guard-eval` take their flags from here).
public struct DivergenceSettings: Sendable, Equatable {
    public var policy: DivergencePolicy = .rollback
    public var onRepeat: RepeatedDivergencePolicy = .lowerLR
    /// Steps between rolling snapshots.
    public var snapshotEvery = 100
    /// The decision rule's constants (`DivergenceRule`).
    public var rule = DivergenceRule.Settings()
    /// Rollbacks within `repeatWindow` steps that make a divergence "repeated".
    public var repeatCount = 2
    public var repeatWindow = 300
    /// Factor on the learning rate per lowering (`--lr-backoff`).
    public var lrBackoff = 0.5
    /// Lowerings before the guard gives up and stops the run.
    public var maxLowerings = 6
    /// Batches `--on-divergence skip` drops in a row before it rolls back instead.
    public var maxConsecutiveSkips = 3

    public init() {}

    // MARK: Flags (help and checks, worded for the command line)

    public static let policyHelp = "On a divergence (a non-finite loss or gradient, a loss outlier or a climbing smoothed loss): rollback (to the last snapshot), skip (the batch), stop, or off."
    public static var repeatHelp: String {
        let d = DivergenceSettings()
        return "When divergence comes back (\(d.repeatCount) rollbacks within \(d.repeatWindow) steps): lower-lr (multiply the learning rate by --lr-backoff, at most \(d.maxLowerings) times, then stop) or stop (end the run, naming the rate and the step)."
    }
    public static let lrBackoffHelp = "Factor on the learning rate each time repeated divergence lowers it (0 < X < 1)."
    public static let snapshotEveryHelp = "Steps between the divergence guard's in-memory snapshots."
    public static var outlierMadsHelp: String {
        let r = DivergenceRule.Settings()
        return "A loss outlier is a loss above the median of the last \(r.window) steps by this many median absolute deviations (and by \(r.outlierFloor) nats at least)."
    }

    /// What is wrong with `--snapshot-every n`, worded for the flag (nil when it is fine).
    public static func snapshotEveryProblem(_ n: Int) -> String? {
        n >= 1 ? nil : "--snapshot-every must be at least 1, got \(n)"
    }

    public static func lrBackoffProblem(_ x: Double) -> String? {
        x > 0 && x < 1 ? nil : "--lr-backoff must be between 0 and 1 (exclusive), got \(x)"
    }

    public static func outlierMadsProblem(_ x: Double) -> String? {
        x > 0 ? nil : "--outlier-mads must be positive, got \(x)"
    }

    public static func policyProblem(_ text: String) -> String? {
        DivergencePolicy(rawValue: text) != nil ? nil
            : "--on-divergence must be one of \(DivergencePolicy.allCases.map(\.rawValue).joined(separator: ", ")) (got '\(text)')"
    }

    public static func repeatProblem(_ text: String) -> String? {
        RepeatedDivergencePolicy(rawValue: text) != nil ? nil
            : "--on-repeated-divergence must be one of \(RepeatedDivergencePolicy.allCases.map(\.rawValue).joined(separator: ", ")) (got '\(text)')"
    }
}

/// The guard's state: the last good snapshot of the run state and the changes made since it,
/// and the record of recent rollbacks that decides when a divergence is repeated. The rule's
/// window of recent losses is part of the run state (`RunState.guardWindow`), so a rollback
/// restores it with the rest: the restored model is judged against the losses of its own time,
/// not those of the later steps it undid (after a task's loss fell from 2 to 0.03, the state from
/// before the fall would otherwise "diverge" at once, every time).
struct DivergenceGuard {
    let settings: DivergenceSettings
    /// The rolling snapshot: the run state before the step at `step`.
    var snapshot: (step: Int, state: RunState)?
    /// Accepted changes since the snapshot, as "context.long 1 → 4 (step 200)".
    var changesSinceSnapshot: [String] = []
    /// Batches dropped in a row by `--on-divergence skip`.
    var consecutiveSkips = 0
    /// Steps of the rollbacks within the last `repeatWindow` steps.
    var recentRollbacks: [Int] = []
    /// Times repeated divergence lowered the learning rate.
    var lowerings = 0

    init(settings: DivergenceSettings) {
        self.settings = settings
    }

    var active: Bool { settings.policy != .off }

    /// Takes the rolling snapshot of `state` before the step at `step` (reusing the last
    /// snapshot's arenas); the changes since the snapshot start afresh.
    mutating func takeSnapshot(of state: RunState, step: Int) {
        if snapshot == nil {
            snapshot = (step, state.copy())
        } else {
            snapshot!.step = step
            snapshot!.state.assign(from: state)
        }
        changesSinceSnapshot = []
    }

    /// Puts the snapshot back into `state`, which keeps its data cursor: a rollback skips the
    /// batches since the snapshot. Returns the snapshot's step.
    mutating func rollBack(_ state: inout RunState) -> Int {
        let snap = snapshot!
        state.assign(from: snap.state, keepingData: true)
        consecutiveSkips = 0
        changesSinceSnapshot = []
        return snap.step
    }

    /// What a rollback at `step` means for the run.
    enum Repeat: Equatable {
        /// A first divergence (or one long after the last): roll back only.
        case first
        /// Repeated: roll back and lower the rate.
        case lowerRate
        /// Repeated and the user chose stop, or the rate was lowered `maxLowerings` times already.
        case stop
    }

    /// Counts a rollback at `step` and says whether it is a repeated divergence.
    mutating func countRollback(at step: Int) -> Repeat {
        recentRollbacks = recentRollbacks.filter { step - $0 < settings.repeatWindow } + [step]
        guard recentRollbacks.count >= settings.repeatCount else { return .first }
        if settings.onRepeat == .stop || lowerings >= settings.maxLowerings { return .stop }
        return .lowerRate
    }

    /// The part of the guard a checkpoint keeps, so that a resumed run judges its steps as the
    /// uninterrupted run would.
    struct Persistent: Codable, Equatable {
        var rule: DivergenceRule
        var recentRollbacks: [Int]
        var lowerings: Int
    }

    /// The guard's part of a checkpoint, with the main run's `window`.
    func persistent(window: DivergenceRule) -> Persistent {
        Persistent(rule: window, recentRollbacks: recentRollbacks, lowerings: lowerings)
    }

    /// Takes up a checkpoint's state, its rule state into the main run's `window`. A rule state
    /// made under other rule settings (a resume with another --outlier-mads) is left out: the
    /// rule starts afresh under the new ones.
    mutating func restore(_ p: Persistent, window: inout DivergenceRule) {
        if p.rule.settings == settings.rule { window = p.rule }
        recentRollbacks = p.recentRollbacks
        lowerings = p.lowerings
    }
}

extension Trainer {
    // MARK: - Divergence guard

    /// Takes the rolling snapshot when one is due, as `run()` does; returns its milliseconds
    /// (nil: none was due). For `gradflow bench`.
    public func takeRollingSnapshotIfDue() -> Double? {
        let t0 = Date()
        guard snapshotIfDue() else { return nil }
        return Date().timeIntervalSince(t0) * 1000
    }

    /// Bytes of one copy of the run state (a twin or the rolling snapshot holds one).
    public var stateBytes: Int { main.bytes }

    /// Takes the rolling snapshot when one is due (before the step at `step`: every
    /// `snapshotEvery` steps, and at the first step of a resumed run); true when it did.
    @discardableResult
    func snapshotIfDue() -> Bool {
        guard divergence.active, divergence.settings.snapshotEvery > 0,
              step % divergence.settings.snapshotEvery == 0 || divergence.snapshot == nil,
              divergence.snapshot?.step != step else { return false }
        divergence.takeSnapshot(of: main, step: step)
        return true
    }

    /// The learning rate of the step at `step`: the schedule × the run's scale.
    func learningRate(at step: Int) -> Double {
        config.schedule.rate(at: step) * learningRateScale
    }

    /// Checks a finished step (not yet published, step counter not yet moved). Returns false when
    /// the step must not be published: it was rolled back or skipped (its event went out).
    /// A healthy step's warning (a loss bump) goes out after its record. Throws to stop the run.
    func guardStep(_ result: StepResult) throws -> (healthy: Bool, warning: String?) {
        let record = result.record
        // A healthy loss joins the window.
        let o = main.guardWindow.observe(loss: record.loss, gradNorm: record.gradNorm)
        guard divergence.active, let d = o.divergence else {
            divergence.consecutiveSkips = 0
            return (true, o.warning)
        }
        let rate = String(format: "%g", record.learningRate)
        switch divergence.settings.policy {
        case .off: return (true, nil)
        case .stop:
            throw DivergenceStop(message: "\(TrainingFailure.diverged)\(record.step) at learning rate \(rate): \(d) (--on-divergence stop)")
        case .skip where result.skipped && divergence.consecutiveSkips < divergence.settings.maxConsecutiveSkips:
            // Isolated bad batches are dropped; a run of them means the state is bad: roll back.
            divergence.consecutiveSkips += 1
            bus.publish(.event(EventRecord(step: record.step, t: elapsed, kind: .warning, source: .divergenceGuard,
                                           message: "batch skipped: \(d) (no backward pass, no update)")))
            return (false, nil)
        case .skip, .rollback:
            try rollback(reason: d.message, badStep: record.step, rate: record.learningRate)
            return (false, nil)
        }
    }

    /// Restores the snapshot after a divergence at `badStep`; a repeated divergence then lowers
    /// the learning rate, or stops the run (`--on-repeated-divergence`).
    private func rollback(reason: String, badStep: Int, rate: Double) throws {
        guard divergence.snapshot != nil else {
            throw DivergenceStop(message: "\(TrainingFailure.diverged)\(badStep) before the first snapshot: \(reason)")
        }
        let repeated = divergence.countRollback(at: badStep)
        let count = divergence.recentRollbacks.count, window = divergence.settings.repeatWindow
        if repeated == .stop {
            let why = divergence.settings.onRepeat == .stop
                ? "--on-repeated-divergence stop"
                : "the learning rate was lowered \(divergence.lowerings) times already, to \(String(format: "%g", learningRateScale)) × --lr \(String(format: "%g", config.learningRate))"
            throw DivergenceStop(message: "\(TrainingFailure.diverged)\(badStep) at learning rate \(String(format: "%g", rate)) (\(reason)); "
                                 + "\(count) rollbacks within \(window) steps (\(why)); stopping. Try a lower --lr.")
        }
        closeTwin(partial: true)
        twin = nil
        let reverted = divergence.changesSinceSnapshot
        // The step counter and the best validation loss stay: steps never go back in the run file.
        let restored = divergence.rollBack(&main)
        let lost = badStep + 1 - restored
        var e = EventRecord(step: badStep, t: elapsed, kind: .rollback, source: .divergenceGuard,
                            message: "\(reason): back to the snapshot of step \(restored), \(lost) steps lost, \(lost) batches skipped"
                                + (reverted.isEmpty ? "" : "; reverted " + reverted.joined(separator: ", ")))
        e.rollback = RollbackInfo(restoredStep: restored, stepsLost: lost, batchesSkipped: lost, reverted: reverted)
        bus.publish(.event(e))
        if repeated == .lowerRate {
            divergence.lowerings += 1
            bus.publish(.event(changeLearningRateScale(to: learningRateScale * divergence.settings.lrBackoff, step: badStep,
                                                       source: .divergenceGuard,
                                                       why: "divergence came back (\(count) rollbacks within \(window) steps, at learning rate \(String(format: "%g", rate)))")))
        }
    }

    /// Sets the learning-rate scale (the schedule is multiplied by it from the next step on);
    /// returns the `lr` event with the old and new scale, for the caller to publish.
    func changeLearningRateScale(to scale: Double, step: Int, source: EventSource, why: String) -> EventRecord {
        let old = learningRateScale
        learningRateScale = scale
        let message = String(format: "learning rate × %g: scale %g → %g (peak %g → %g)", scale / old, old, scale,
                             config.learningRate * old, config.learningRate * scale) + "; " + why
        return EventRecord(step: step, t: elapsed, kind: .lr, oldValue: old, newValue: scale, source: source, message: message)
    }
}

/// The divergence guard ended the run.
struct DivergenceStop: Error, CustomStringConvertible {
    var message: String
    var description: String { message }
}
