import ArgumentParser
import Foundation
import Telemetry
import Training

/// A hidden test hook of `gradflow train` (not in --help): each rank's state fingerprint at the
/// end, which the MPI test uses to see that every rank applied rank 0's change (`--change`) at the
/// same step.
struct DebugHooks: ParsableArguments {
    @Flag(name: .customLong("debug-fingerprint"), help: .private)
    var fingerprint = false

    /// Prints the rank's state fingerprint to standard error when asked.
    func report(_ trainer: Trainer) {
        guard fingerprint else { return }
        FileHandle.standardError.write(Data("gradflow: rank \(trainer.collective.rank) step \(trainer.step) state \(trainer.stateFingerprint())\n".utf8))
    }
}
