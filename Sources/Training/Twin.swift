import Foundation
import Kernels
import Model
import Refinement
import Telemetry

/// The paired twin of an intervention (docs/ARCHITECTURE.md §3; its statistics: docs/METHOD.md):
/// a second run state forked just before the change, stepped on the same batches with the old
/// settings, so that d_t = loss_main − loss_twin measures the change and nothing else. Its state is stepped by the same `Trainer.step(_:batch:)` as the main
/// run's; activations and gradients are the model's scratch, shared with the main run.
final class Twin {
    /// The twin's run state (its own parameters, optimizer and refinement).
    var state: RunState
    /// Step of the change (the boundary where the window opened).
    let changeStep: Int
    let windowSteps: Int
    /// The event of the change under test (kind `twin` for an A/A check); with several changes
    /// at one step, the first, its band (or axis) cleared where they differ.
    private(set) var change: EventRecord
    var differences = PairedDifferences()
    /// Set once the verdict is out: the twin no longer steps, and is kept for a revert.
    var closedAtStep: Int?

    init(state: RunState, changeStep: Int, windowSteps: Int, change: EventRecord, description: String) {
        changeDescription = description
        self.state = state
        self.changeStep = changeStep
        self.windowSteps = windowSteps
        self.change = change
    }

    var isOpen: Bool { closedAtStep == nil }

    /// "context.long 1 → 4", "A/A check (no change)" or the event's message; several changes at
    /// one step are listed together.
    private(set) var changeDescription: String

    /// Whether a change at `step` joins this window instead of opening its own: the window opened
    /// at the same step boundary for a change (not an A/A check) and has paired no step yet.
    func takesChange(atStep step: Int) -> Bool {
        isOpen && changeStep == step && differences.count == 0 && change.kind != .twin
    }

    /// A further change at the window's own step (undo after `a` sets every band of an axis at
    /// once): the window measures all of them against a twin that has none.
    func absorb(_ e: EventRecord, description: String) {
        changeDescription += ", " + description
        if change.axis != e.axis {
            change.axis = nil
            change.band = nil
            change.layer = nil
        } else if change.band != e.band || change.layer != e.layer {
            change.band = nil
            change.layer = nil
        }
    }
}

extension Trainer {
    // MARK: - Commands that open, close and revert windows

    /// Applies one weight, mode or target command; an accepted change opens a twin window from
    /// the state just before it (closing an open one first).
    func applyChange(_ c: Command) {
        let before = engine.snapshot()
        guard let e = engine.apply(c, step: step, t: elapsed) else { return }
        // A weight, mode or target set to the value it has (an undo after a revert, a repeated
        // command) is answered but changes nothing: no window to measure it.
        let unchanged = e.oldValue != nil && e.oldValue == e.newValue
        let accepted = (e.kind == .weight || e.kind == .mode || e.kind == .target) && !unchanged
        // A target only steers the adaptive context policy: on a manual axis it changes nothing
        // yet, so there is nothing for a twin window to measure.
        let changesTraining = e.kind != .target || engine.mode(.context) == .adaptive
        if accepted {
            divergence.changesSinceSnapshot.append("\(describe(e)) (step \(step))")
            if interventions.twinSteps > 0 && changesTraining {
                if let twin, twin.takesChange(atStep: step) {
                    // Several changes at one step boundary are one change under test; the twin
                    // stays at the state before the first (a verdict cut off after 0 steps each
                    // would say nothing).
                    twin.absorb(e, description: describe(e))
                    publish(answering: c, e)
                    return
                }
                closeTwin(partial: true)
                publish(answering: c, e)
                openTwin(before: before, change: e)
                return
            }
        }
        // Through the channel's bookkeeping: the id is answered, the checkpoint lists it as held,
        // and a command applied again after a resume says so.
        publish(answering: c, e)
    }

    /// "context.long 1 → 4", "time adaptive", "A/A check (no change)".
    func describe(_ e: EventRecord) -> String {
        func number(_ v: Double?) -> String { v.map { String(format: "%g", $0) } ?? "?" }
        guard let axis = e.axis else { return e.kind == .twin ? "A/A check (no change)" : e.kind.rawValue }
        switch e.kind {
        case .weight:
            let names = bandNames(axis)
            let band = e.band.map { $0 >= 0 && $0 < names.count ? names[$0] : String($0) } ?? "?"
            return "\(axis.rawValue).\(band)\(e.layer.map { " L\($0)" } ?? "") \(number(e.oldValue)) → \(number(e.newValue))"
        case .mode: return "\(axis.rawValue) \((e.newValue ?? 0) != 0 ? "adaptive" : "manual")"
        case .target: return "context target share of band \(e.band ?? 0) → \(number(e.newValue))"
        default: return e.message.isEmpty ? e.kind.rawValue : e.message
        }
    }

    /// A/A check: a window with no change.
    func openAATwin(answering command: Command) {
        guard interventions.twinSteps > 0 else {
            publish(answering: command, EventRecord(step: step, t: elapsed, kind: .refused, source: command.source,
                                                    message: "twins are off in this run (--twin-steps 0)"))
            return
        }
        closeTwin(partial: true)
        var e = EventRecord(step: step, t: elapsed, kind: .twin, source: command.source,
                            message: "A/A check: twin window of \(interventions.twinSteps) steps with no change")
        e.commandId = command.id
        bus.publish(.event(e))
        openTwin(before: engine.snapshot(), change: e)
    }

    /// Forks the twin from the main run's state, with the refinement as it was before the change.
    private func openTwin(before: RefinementEngine.Snapshot, change: EventRecord) {
        let state = RunState(params: ParameterArena(copying: main.params), optimizer: main.optimizer.copy(),
                             refinement: main.refinement.copy(as: before), guardWindow: main.guardWindow,
                             data: main.data, lastLoss: main.lastLoss)
        twin = Twin(state: state, changeStep: step, windowSteps: interventions.twinSteps, change: change,
                    description: describe(change))
    }

    /// Steps the open twin's state on the batch the main run just used; fills the record's twin
    /// sample and counts the twin's time in the step's (tokens/s stay main-run tokens).
    func stepTwin(_ record: inout StepRecord) {
        guard let twin, twin.isOpen else { return }
        let t0 = Date()
        let twinRecord = step(&twin.state, batch: .current).record
        twin.differences.append(record.loss - twinRecord.loss)
        let ci = twin.differences.interval
        record.twin = TwinSample(loss: twinRecord.loss, pairedSteps: twin.differences.count, windowSteps: twin.windowSteps,
                                 changeStep: twin.changeStep, delta: twin.differences.mean, low: ci?.low, high: ci?.high)
        let seconds = record.stepMilliseconds / 1000 + Date().timeIntervalSince(t0)
        record.stepMilliseconds = seconds * 1000
        record.tokensPerSecond = Double(config.batch * config.context) / max(seconds, 1e-9)
    }

    /// Closes the window when its steps are done (call after the step counter moved on).
    func closeTwinIfDone() {
        if let twin, twin.isOpen, twin.differences.count >= twin.windowSteps { closeTwin(partial: false) }
    }

    /// Publishes the verdict of an open window and freezes the twin (kept for a revert).
    func closeTwin(partial: Bool) {
        guard let twin, twin.isOpen else { return }
        var validation: [VerdictInfo.DomainDelta] = []
        if twin.differences.count > 0 {
            let main = domainLosses()
            let other = domainLosses(parameters: UnsafePointer(twin.state.params.pointer))
            validation = zip(main, other).map { VerdictInfo.DomainDelta(name: $0.name, delta: $0.loss - $1.loss) }
        }
        let d = twin.differences
        let ci = d.interval
        let info = VerdictInfo(changeStep: twin.changeStep, word: d.word, delta: d.mean, low: ci?.low, high: ci?.high,
                               steps: d.count, partial: partial, validation: validation)
        twin.closedAtStep = step
        var e = EventRecord(step: step, t: elapsed, kind: .verdict, axis: twin.change.axis, band: twin.change.band,
                            layer: twin.change.layer, source: .twin,
                            message: "\(twin.changeDescription) at step \(twin.changeStep): \(info.summary)")
        e.verdict = info
        bus.publish(.event(e))
    }

    /// Makes the twin the main run. While its window is open the verdict so far goes out first
    /// (partial); after the verdict the twin's state at the window's end is taken and the main
    /// run's steps since are lost. The main run keeps its data cursor (the data order moves on),
    /// its last loss and the guard's window (which judges the losses the run published).
    func revertToTwin(answering command: Command) {
        let source = command.source
        guard let twin else {
            publish(answering: command, EventRecord(step: step, t: elapsed, kind: .refused, source: source,
                                                    message: "nothing to revert: no twin window since the last change (twins: --twin-steps)"))
            return
        }
        closeTwin(partial: true)
        let lost = step - (twin.closedAtStep ?? step)
        // The parameters move into the model's arena; the optimizer and refinement are taken over.
        main.params.assign(from: twin.state.params)
        main = RunState(params: main.params, optimizer: twin.state.optimizer, refinement: twin.state.refinement,
                        guardWindow: main.guardWindow, data: main.data, lastLoss: main.lastLoss)
        self.twin = nil
        divergence.changesSinceSnapshot.append("revert of \(twin.changeDescription) (step \(step))")
        var message = "reverted \(twin.changeDescription) of step \(twin.changeStep): the twin is the main run"
        if lost > 0 { message += "; the main run's \(lost) steps since the verdict are discarded" }
        publish(answering: command, EventRecord(step: step, t: elapsed, kind: .revert, axis: twin.change.axis, band: twin.change.band,
                                                layer: twin.change.layer, source: source, message: message))
    }

    /// Validation loss per domain, the same windows as `evaluate()`, without the extras; with
    /// the main run's parameters or another state's (`parameters`).
    func domainLosses(parameters: UnsafePointer<Float>? = nil) -> [DomainEval] {
        validationSets.map { name, d in
            DomainEval(name: name, loss: validationLoss(d, T: config.context, window: nil, collectPositions: false,
                                                       parameters: parameters).loss)
        }
    }

    /// The validation domains as `evaluate()` names them: the training data's held-out split first.
    var validationSets: [(name: String, data: ByteDataset)] {
        [(DomainEval.heldOutPrefix + train.name, train)] + heldOutDomains.map { ($0.name, $0) }
    }
}

/// How the end message of a run that failed because training itself went wrong (it diverged, or
/// its loss stopped being finite) begins, as opposed to a failure of the machine (a checkpoint
/// that could not be written). A study keeps the first kind as an outcome and reruns the second.
public enum TrainingFailure {
    /// "diverged at step N …" (the divergence guard ended the run).
    static let diverged = "diverged at step "
    /// "loss became nan at step N" (a non-finite loss with the guard off).
    static let nonFinite = "loss became "

    /// Whether `end` is a failed run whose training went wrong: its `failure` kind says (schema
    /// 1.3); a file written before has none, and its end message's opening words say.
    public static func isTraining(_ end: EndRecord) -> Bool {
        guard end.reason == .failed else { return false }
        return end.failure.map(\.isTraining) ?? (end.message.hasPrefix(diverged) || end.message.hasPrefix(nonFinite))
    }
}
