import ArgumentParser
import Foundation
import Refinement
import Training

/// Twins, scripted changes and the divergence guard (docs/METHOD.md, "Did a change help?").
public struct InterventionOptions: ParsableArguments {
    @Option(help: "Paired twin window after every weight or mode change, in steps (0: no twins).")
    public var twinSteps: Int = RunRecipe().twinSteps

    @Option(help: ArgumentHelp("Open a twin window with no change at STEP (A/A check: d_t must be 0).", valueName: "STEP"))
    public var twinAt: [Int] = []

    @Option(help: ArgumentHelp("Change a weight or mode at a step, as a key would (repeatable): STEP:AXIS.BAND=VALUE or STEP:AXIS=adaptive|manual, e.g. 200:context.long=4.", valueName: "CHANGE"))
    public var change: [String] = []

    @Option(help: ArgumentHelp("Apply the changes of a recorded run (its run.jsonl or folder) at the same steps, or of a text file with one --change per line.", valueName: "FILE|RUNDIR"))
    public var schedule: String?

    @Option(help: ArgumentHelp(DivergenceSettings.policyHelp, valueName: DivergencePolicy.allCases.map(\.rawValue).joined(separator: "|")))
    public var onDivergence: String = RunRecipe().divergence.policy.rawValue

    @Option(help: ArgumentHelp(DivergenceSettings.repeatHelp, valueName: RepeatedDivergencePolicy.allCases.map(\.rawValue).joined(separator: "|")))
    public var onRepeatedDivergence: String = RunRecipe().divergence.onRepeat.rawValue

    @Option(help: ArgumentHelp(DivergenceSettings.lrBackoffHelp, valueName: "X"))
    public var lrBackoff: Double = RunRecipe().divergence.lrBackoff

    @Option(help: ArgumentHelp(DivergenceSettings.snapshotEveryHelp))
    public var snapshotEvery: Int = RunRecipe().divergence.snapshotEvery

    // --spike-mads was its name before the rule was called an outlier (the dashboard's spikes are
    // another statistic); still read.
    @Option(name: [.customLong("outlier-mads"), .customLong("spike-mads")], help: ArgumentHelp(DivergenceSettings.outlierMadsHelp, valueName: "K"))
    public var outlierMads: Double = RunRecipe().divergence.rule.mads

    public init() {}

    /// Checks the flags that need no trainer.
    public func validate() throws {
        for problem in [DivergenceSettings.policyProblem(onDivergence), DivergenceSettings.repeatProblem(onRepeatedDivergence)] {
            if let problem { throw ValidationError(problem) }
        }
        var r = RunRecipe()
        fill(&r)
        if let problem = r.interventionProblem() { throw ValidationError(problem) }
    }

    /// Sets the recipe's twin, change and divergence fields.
    public func fill(_ r: inout RunRecipe) {
        r.twinSteps = twinSteps
        r.twinAt = twinAt
        r.changes = change
        r.schedule = schedule
        // `validate` has refused any other text.
        r.divergence.policy = DivergencePolicy(rawValue: onDivergence) ?? r.divergence.policy
        r.divergence.onRepeat = RepeatedDivergencePolicy(rawValue: onRepeatedDivergence) ?? r.divergence.onRepeat
        r.divergence.lrBackoff = lrBackoff
        r.divergence.snapshotEvery = snapshotEvery
        r.divergence.rule.mads = outlierMads
    }
}
