import ArgumentParser
import Foundation
import Refinement
import Telemetry
import Training

/// Twins, scripted changes and the divergence guard (docs/METHOD.md, "Did a change help?").
struct InterventionOptions: ParsableArguments {
    @Option(help: "Paired twin window after every weight or mode change, in steps (0: no twins).")
    var twinSteps: Int = InterventionSettings().twinSteps

    @Option(help: ArgumentHelp("Open a twin window with no change at STEP (A/A check: d_t must be 0).", valueName: "STEP"))
    var twinAt: [Int] = []

    @Option(help: ArgumentHelp("Change a weight or mode at a step, as a key would (repeatable): STEP:AXIS.BAND=VALUE or STEP:AXIS=adaptive|manual, e.g. 200:context.long=4.", valueName: "CHANGE"))
    var change: [String] = []

    @Option(help: ArgumentHelp("Apply the changes of a recorded run (its run.jsonl or folder) at the same steps, or of a text file with one --change per line.", valueName: "FILE|RUNDIR"))
    var schedule: String?

    @Option(help: ArgumentHelp("On a non-finite loss or gradient or a loss spike: rollback (to the last snapshot), skip (the batch), stop, or off.",
                               valueName: DivergencePolicy.allCases.map(\.rawValue).joined(separator: "|")))
    var onDivergence: String = DivergenceSettings().policy.rawValue

    @Option(help: "Steps between the divergence guard's in-memory snapshots.")
    var snapshotEvery: Int = DivergenceSettings().snapshotEvery

    @Option(help: "A loss spike is a loss above the median of the last \(DivergenceSettings().window) steps by this many median absolute deviations.")
    var spikeMads: Double = DivergenceSettings().mads

    /// Checks the flags that need no trainer.
    func validate() throws {
        if twinSteps < 0 { throw ValidationError("--twin-steps must be 0 (off) or a positive number of steps, got \(twinSteps)") }
        if let e = DivergenceSettings.snapshotEveryProblem(snapshotEvery) { throw ValidationError(e) }
        if !(spikeMads > 0) { throw ValidationError("--spike-mads must be positive, got \(spikeMads)") }
        if DivergencePolicy(rawValue: onDivergence) == nil {
            throw ValidationError("--on-divergence must be one of \(DivergencePolicy.allCases.map(\.rawValue).joined(separator: ", ")) (got '\(onDivergence)')")
        }
        for s in twinAt where s < 0 { throw ValidationError("--twin-at must be a step ≥ 0, got \(s)") }
        if !twinAt.isEmpty && twinSteps == 0 { throw ValidationError("--twin-at needs twins: drop --twin-steps 0") }
        for c in change {
            do { _ = try ChangeSpec.parse(c, place: "--change") } catch { throw ValidationError("\(error)") }
        }
    }

    /// The settings, with band names resolved against the trainer's axes.
    func settings(bandNames: (ScaleAxis) -> [String]) throws -> InterventionSettings {
        var s = InterventionSettings()
        s.twinSteps = twinSteps
        s.divergence.policy = DivergencePolicy(rawValue: onDivergence) ?? .rollback
        s.divergence.snapshotEvery = snapshotEvery
        s.divergence.mads = spikeMads
        do {
            if let schedule { s.scheduled += try Schedule.read(path: schedule, bandNames: bandNames) }
            for c in change {
                let spec = try ChangeSpec.parse(c, place: "--change")
                s.scheduled.append(ScheduledCommand(step: spec.step, command: try spec.command(bandNames: bandNames(spec.axis), place: "--change \(c)", source: .flag)))
            }
        } catch let e as InterventionError {
            throw CLIError(e.description)
        }
        for step in twinAt { s.scheduled.append(ScheduledCommand(step: step, command: .openTwin(source: .flag))) }
        // Same-step changes keep their order.
        s.scheduled = s.scheduled.enumerated().sorted { ($0.element.step, $0.offset) < ($1.element.step, $1.offset) }.map(\.element)
        return s
    }
}
