import Refinement
import ArgumentParser
import Foundation
import Telemetry
import Training

/// Hidden test hooks of `gradflow train` (not in --help): a weight command sent from rank 0 at a
/// fixed step boundary, and each rank's state fingerprint at the end, which the MPI test uses to
/// see that every rank applied the change at the same step.
struct DebugHooks: ParsableArguments {
    @Option(name: .customLong("debug-send"), help: .private)
    var send: [String] = []

    @Flag(name: .customLong("debug-fingerprint"), help: .private)
    var fingerprint = false

    /// `STEP:AXIS.BAND=VALUE` → (step, command).
    func scripted() throws -> [(Int, Command)] {
        try send.map { spec in
            let bad = ValidationError("--debug-send expects STEP:AXIS.BAND=VALUE (got '\(spec)')")
            let parts = spec.split(separator: ":", maxSplits: 1)
            guard parts.count == 2, let step = Int(parts[0]) else { throw bad }
            let rest = parts[1].split(separator: "=", maxSplits: 1)
            guard rest.count == 2, let value = Double(rest[1]) else { throw bad }
            let target = rest[0].split(separator: ".", maxSplits: 1)
            guard target.count == 2, let axis = ScaleAxis(rawValue: String(target[0])), let band = Int(target[1]) else { throw bad }
            return (step, .setWeight(WeightTarget(axis: axis, band: band), value, source: "debug"))
        }
    }

    /// `collective`, with the scripted commands added to rank 0's at their step boundaries.
    func wrap(_ collective: Collective) throws -> Collective {
        let script = try scripted()
        return script.isEmpty ? collective : ScriptedCollective(collective, script: script)
    }

    /// Prints the rank's state fingerprint to standard error when asked.
    func report(_ trainer: Trainer) {
        guard fingerprint else { return }
        FileHandle.standardError.write(Data("gradflow: rank \(trainer.collective.rank) step \(trainer.step) state \(trainer.stateFingerprint())\n".utf8))
    }
}

/// A collective whose rank 0 adds scripted commands to the first broadcast at their step.
final class ScriptedCollective: Collective {
    let base: Collective
    var script: [(Int, Command)]

    init(_ base: Collective, script: [(Int, Command)]) {
        self.base = base
        self.script = script
    }

    var rank: Int { base.rank }
    var size: Int { base.size }
    func average(_ values: UnsafeMutablePointer<Float>, count: Int) { base.average(values, count: count) }
    func sum(_ values: UnsafeMutablePointer<Double>, count: Int) { base.sum(values, count: count) }
    func agreeToStop(_ stop: Bool) -> Bool { base.agreeToStop(stop) }
    func broadcast(_ commands: [Command], step: Int) -> [Command] {
        let due = script.filter { $0.0 == step }.map(\.1)
        script.removeAll { $0.0 == step }
        return base.broadcast(rank == 0 ? commands + due : commands, step: step)
    }
}
