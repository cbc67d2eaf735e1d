import Foundation
import Kernels
import Model
import Refinement
import Telemetry

/// The paired twin of an intervention (DESIGN §2.1): a second training state forked just before
/// the change, stepped on the same batches with the old settings, so that d_t = loss_main −
/// loss_twin measures the change and nothing else. It owns its parameters, optimizer and
/// refinement engine; activations and gradients are the model's scratch, shared with the main run.
final class Twin {
    var params: [Float]
    var optimizer: AdamW
    var engine: RefinementEngine
    /// Step of the change (the boundary where the window opened).
    let changeStep: Int
    let windowSteps: Int
    /// The event of the change under test (kind `twin` for an A/A check).
    let change: EventRecord
    var differences = PairedDifferences()
    /// Set once the verdict is out: the twin no longer steps, and is kept for a revert.
    var closedAtStep: Int?

    init(params: [Float], optimizer: AdamW, engine: RefinementEngine, changeStep: Int, windowSteps: Int, change: EventRecord,
         description: String) {
        changeDescription = description
        self.params = params
        self.optimizer = optimizer
        self.engine = engine
        self.changeStep = changeStep
        self.windowSteps = windowSteps
        self.change = change
    }

    var isOpen: Bool { closedAtStep == nil }

    /// "context.long 1 → 4", "A/A check (no change)" or the event's message.
    let changeDescription: String
}

extension Trainer {
    // MARK: - Commands that open, close and revert windows

    /// Applies one weight, mode or target command; an accepted change opens a twin window from
    /// the state just before it (closing an open one first).
    func applyChange(_ c: Command) {
        let before = engine.snapshot()
        guard let e = engine.apply(c, step: step, t: elapsed) else { return }
        let accepted = e.kind == .weight || e.kind == .mode || e.kind == .target
        if accepted {
            divergence.changesSinceSnapshot.append("\(describe(e)) (step \(step))")
            if interventions.twinSteps > 0 {
                closeTwin(partial: true)
                bus.publish(.event(e))
                openTwin(before: before, change: e)
                return
            }
        }
        bus.publish(.event(e))
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

    private func openTwin(before: RefinementEngine.Snapshot, change: EventRecord) {
        let n = model.layout.count
        twin = Twin(params: Array(UnsafeBufferPointer(start: model.params, count: n)), optimizer: optimizer.copy(),
                    engine: engine.copy(as: before, layout: model.layout, totalSteps: config.steps, context: config.context),
                    changeStep: step, windowSteps: interventions.twinSteps, change: change, description: describe(change))
    }

    /// Exchanges the live state with the twin's (parameters by value, optimizer and engine by reference).
    private func swapTwin(_ twin: Twin) {
        let n = model.layout.count
        twin.params.withUnsafeMutableBufferPointer { tp in
            let a = model.params, b = tp.baseAddress!
            model.parallel.chunks(n, minimumChunk: 65_536) { _, r in
                for i in r { let x = a[i]; a[i] = b[i]; b[i] = x }
            }
        }
        swap(&optimizer, &twin.optimizer)
        swap(&engine, &twin.engine)
    }

    /// Steps the open twin on the batch the main run just used; fills the record's twin sample and
    /// counts the twin's time in the step's (tokens/s stay main-run tokens).
    func stepTwin(_ record: inout StepRecord) {
        guard let twin, twin.isOpen else { return }
        let t0 = Date()
        let mainLast = lastLoss
        swapTwin(twin)
        let twinRecord = trainStep(freshBatch: false)
        swapTwin(twin)
        lastLoss = mainLast
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
            swapTwin(twin)
            let other = domainLosses()
            swapTwin(twin)
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
    /// run's steps since are lost (the data order moves on).
    func revertToTwin(answering command: Command) {
        let source = command.source
        guard let twin else {
            publish(answering: command, EventRecord(step: step, t: elapsed, kind: .refused, source: source,
                                                    message: "nothing to revert: no twin window since the last change (twins: --twin-steps)"))
            return
        }
        closeTwin(partial: true)
        let lost = step - (twin.closedAtStep ?? step)
        twin.params.withUnsafeBufferPointer { model.params.update(from: $0.baseAddress!, count: model.layout.count) }
        optimizer = twin.optimizer
        engine = twin.engine
        self.twin = nil
        divergence.changesSinceSnapshot.append("revert of \(twin.changeDescription) (step \(step))")
        var message = "reverted \(twin.changeDescription) of step \(twin.changeStep): the twin is the main run"
        if lost > 0 { message += "; the main run's \(lost) steps since the verdict are discarded" }
        publish(answering: command, EventRecord(step: step, t: elapsed, kind: .revert, axis: twin.change.axis, band: twin.change.band,
                                                layer: twin.change.layer, source: source, message: message))
    }

    /// Validation loss per domain, the same windows as `evaluate()`, without the extras.
    func domainLosses() -> [DomainEval] {
        validationSets.map { name, d in
            DomainEval(name: name, loss: validationLoss(d, T: config.context, window: nil, collectPositions: false).loss)
        }
    }

    /// The validation domains as `evaluate()` names them: the training data's held-out split first.
    var validationSets: [(name: String, data: ByteDataset)] {
        [("val:" + train.name, train)] + heldOutDomains.map { ($0.name, $0) }
    }

    // MARK: - Divergence guard

    /// Takes the rolling snapshot when one is due, as `run()` does; returns its milliseconds
    /// (nil: none was due). For `gradflow bench`.
    public func takeRollingSnapshotIfDue() -> Double? {
        let t0 = Date()
        guard snapshotIfDue() else { return nil }
        return Date().timeIntervalSince(t0) * 1000
    }

    /// Bytes of one copy of the training state (a twin or the rolling snapshot holds one).
    public var stateBytes: Int { captureState().bytes }

    /// Takes the rolling snapshot when one is due (before the step at `step`); true when it did.
    @discardableResult
    func snapshotIfDue() -> Bool {
        guard divergence.active, divergence.settings.snapshotEvery > 0,
              step % divergence.settings.snapshotEvery == 0, divergence.snapshot?.step != step else { return false }
        if divergence.snapshot == nil {
            divergence.snapshot = captureState()
        } else {
            capture(into: &divergence.snapshot!)
        }
        divergence.changesSinceSnapshot = []
        divergence.rollbacksToSnapshot = 0
        divergence.snapshotTaken()
        return true
    }

    /// Checks a finished step (not yet published, step counter not yet moved). Returns false when
    /// the step must not be published: it was rolled back or skipped (its event went out).
    /// Throws to stop the run.
    func guardStep(_ record: StepRecord) throws -> Bool {
        guard divergence.active else { return true }
        guard let reason = divergence.check(loss: record.loss, gradNorm: record.gradNorm) else {
            divergence.consecutiveSkips = 0
            return true
        }
        switch divergence.settings.policy {
        case .off: return true
        case .stop: throw DivergenceStop(message: "\(TrainingFailure.diverged)\(record.step): \(reason) (--on-divergence stop)")
        case .skip where skippedBatch && divergence.consecutiveSkips < divergence.settings.maxRollbacksPerSnapshot:
            // Isolated bad batches are dropped; a run of them means the state is bad: roll back.
            divergence.consecutiveSkips += 1
            bus.publish(.event(EventRecord(step: record.step, t: elapsed, kind: .warning, source: .divergenceGuard,
                                           message: "batch skipped: \(reason) (no backward pass, no update)")))
            return false
        case .skip, .rollback:
            try rollback(reason: reason, badStep: record.step)
            return false
        }
    }

    private func rollback(reason: String, badStep: Int) throws {
        guard let snap = divergence.snapshot else {
            throw DivergenceStop(message: "\(TrainingFailure.diverged)\(badStep) before the first snapshot: \(reason)")
        }
        guard divergence.rollbacksToSnapshot < divergence.settings.maxRollbacksPerSnapshot else {
            throw DivergenceStop(message: "\(TrainingFailure.diverged)\(badStep) (\(reason)) after \(divergence.rollbacksToSnapshot) rollbacks to the snapshot of step \(snap.step); stopping")
        }
        closeTwin(partial: true)
        twin = nil
        divergence.rollbacksToSnapshot += 1
        divergence.consecutiveSkips = 0
        let reverted = divergence.changesSinceSnapshot
        restore(state: snap, keepDataOrder: true, keepStep: true)
        divergence.rolledBack()
        divergence.changesSinceSnapshot = []
        let lost = badStep + 1 - snap.step
        var e = EventRecord(step: badStep, t: elapsed, kind: .rollback, source: .divergenceGuard,
                            message: "\(reason): back to the snapshot of step \(snap.step), \(lost) steps lost, \(lost) batches skipped"
                                + (reverted.isEmpty ? "" : "; reverted " + reverted.joined(separator: ", ")))
        e.rollback = RollbackInfo(restoredStep: snap.step, stepsLost: lost, batchesSkipped: lost, reverted: reverted)
        bus.publish(.event(e))
    }

    /// With `--on-divergence skip`: whether this loss means the step's backward and update are
    /// dropped (called by `trainStep` right after the forward pass, only under that policy, so
    /// that other policies pay no collective vote per step).
    func skipsBatch(loss: Double) -> Bool {
        divergence.verdict(loss: loss, gradNorm: 0) != nil
    }
}

/// The divergence guard ended the run.
struct DivergenceStop: Error, CustomStringConvertible {
    var message: String
    var description: String { message }
}

/// How the end message of a run that failed because training itself went wrong (it diverged, or
/// its loss stopped being finite) begins, as opposed to a failure of the machine (a checkpoint
/// that could not be written). A study keeps the first kind as an outcome and reruns the second.
public enum TrainingFailure {
    /// "diverged at step N …" (the divergence guard ended the run).
    static let diverged = "diverged at step "
    /// "loss became nan at step N" (a non-finite loss with the guard off).
    static let nonFinite = "loss became "

    /// Whether `end` is a failed run whose training went wrong.
    public static func isTraining(_ end: EndRecord) -> Bool {
        end.reason == .failed && (end.message.hasPrefix(diverged) || end.message.hasPrefix(nonFinite))
    }
}
