import ArgumentParser
import Foundation
import Telemetry
import Training

/// Hidden test hooks of `gradflow train` (not in --help): each rank's state fingerprint at the
/// end, which the MPI test uses to see that every rank applied rank 0's change (`--change`) at the
/// same step; and a fault injected on purpose to see the divergence guard catch it
/// (`--debug-fault lr×50@300`, `nan-grad@300`, `random-bytes@300`; docs/METHOD.md §6b).
struct DebugHooks: ParsableArguments {
    @Flag(name: .customLong("debug-fingerprint"), help: .private)
    var fingerprint = false

    @Option(name: .customLong("debug-fault"), help: .private)
    var fault: String?

    func validate() throws {
        if let fault, FaultInjection.parse(fault) == nil {
            throw ValidationError("--debug-fault must be \(FaultInjection.syntax), got '\(fault)'")
        }
    }

    /// Arms the injected fault, if any.
    func apply(to trainer: Trainer) {
        trainer.fault = fault.flatMap(FaultInjection.parse)
    }

    /// Prints the rank's state fingerprint to standard error when asked.
    func report(_ trainer: Trainer) {
        guard fingerprint else { return }
        Console.error("gradflow: rank \(trainer.collective.rank) step \(trainer.step) state \(trainer.stateFingerprint())\n")
    }
}
