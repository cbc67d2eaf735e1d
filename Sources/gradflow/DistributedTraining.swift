import ArgumentParser
import DataParallel
import Foundation
import Telemetry
import Training

/// `gradflow train` started by `mpirun`: MPI starts, every rank checks its flags and loads its
/// data (each node reads the data files at the same path), rank 0 reads a --resume checkpoint
/// and sends it to the others, and the ranks agree that all of them are ready before anything is
/// written. Then each rank runs a `TrainingSession` on the MPI collective.
struct DistributedTraining {
    let command: TrainCommand

    func run() throws {
        let mpi = MPICollective.start(bucketBytes: command.dataParallel.bucketBytes)
        var setup: TrainingSetup?
        var failure: Failure?
        var past: PastRun?
        do {
            let checkpoint = command.resume.map { sharedCheckpoint($0, mpi) }
            setup = try command.prepare(readCheckpoint: { path in
                guard let checkpoint else { throw CheckpointError("\(path): not read") }
                return try checkpoint.get()
            })
            // Rank 0 writes the run: its resume refusals (later checkpoints, another run's
            // checkpoint) come before the ranks agree to start, not from a running job.
            if mpi.rank == 0, let setup { past = try TrainingSession.readPastRun(setup) }
        } catch let problem as ValidationError {
            failure = Failure(message: problem.message, flag: true)
        } catch {
            failure = Failure(message: "\(error)", flag: false)
        }
        // Every rank takes part in each collective call, whether or not it is ready itself.
        let mismatch = dataMismatch(setup, mpi)
        if let setup, failure == nil {
            // Checked here too (the trainer checks it again), so that a model too large is said
            // once, for the ranks that share this machine's memory.
            failure = Trainer.batchSplitError(batch: setup.config.batch, ranks: mpi.size).map { Failure(message: $0, flag: true) }
                ?? Trainer.memoryProblem(config: setup.config, batch: setup.config.batch / mpi.size,
                                         ranksOnMachine: MPICollective.ranksOnThisMachine).map { Failure(message: $0, flag: false) }
                ?? mismatch.map { Failure(message: $0, flag: false) }
        }
        try agree(failure, mpi)
        var session = TrainingSession(setup: setup!, display: command.display, debug: command.debug)
        session.collective = mpi
        session.pastRun = past
        let code: Int32
        do {
            code = try session.run()
        } catch {
            // A rank that cannot start ends the job (the others would wait for it).
            Console.error("gradflow: \(mpi.error("\(error)"))\n")
            mpi.abort(code: 1)
        }
        // Every rank stops at the same step for the same reason, except when rank 0 alone failed
        // (a checkpoint it could not write): then the job ends at once.
        if code != 0 && code != 130 { mpi.abort(code: code) }
        mpi.finish()
        if code != 0 { throw ExitCode(code) }
    }

    /// Rank 0 reads the checkpoint file and sends its bytes; every rank decodes them (no shared
    /// filesystem needed). An error reading it is rank 0's, reported by every rank alike.
    func sharedCheckpoint(_ path: String, _ mpi: MPICollective) -> Result<Checkpoint, Error> {
        var bytes: [UInt8] = [], problem = "", file = path
        if mpi.rank == 0 {
            do {
                file = try CheckpointFiles.resolve(path)   // a run folder: its latest checkpoint
                bytes = try Checkpoint.fileBytes(file)
            } catch { problem = "\(error)" }
        }
        bytes = mpi.broadcast(bytes)
        problem = mpi.broadcast(problem)
        file = mpi.broadcast(file)
        if !problem.isEmpty { return .failure(CheckpointError(problem)) }
        return Result { try Checkpoint.decode(bytes, path: file) }
    }

    /// The first data source whose bytes differ from rank 0's copy (nil when all agree, or when
    /// this rank or rank 0 has no setup).
    func dataMismatch(_ setup: TrainingSetup?, _ mpi: MPICollective) -> String? {
        let sources = setup.map { [$0.train] + $0.evalDomains } ?? []
        let mine = sources.map(\.hash).joined(separator: ",")
        let lead = mpi.broadcast(mine).split(separator: ",").map(String.init)
        guard lead.count == sources.count else { return nil }
        for (d, hash) in zip(sources, lead) where d.hash != hash {
            return "\(d.path): differs from rank 0's copy (fingerprint \(d.hash), rank 0 has \(hash)); every node needs the same data files"
        }
        return nil
    }

    /// Why a rank cannot start, and whether it is a flag problem (exit status 64, as in one
    /// process) or another failure (1).
    struct Failure {
        var message: String
        var flag: Bool
    }

    /// Every rank learns whether all are ready. When some are not, the job ends on every rank with
    /// exit status 64 when every failure is a flag problem, else 1: an error that every rank hit
    /// alike (a bad flag) is printed once by rank 0; one that only some ranks hit (a data file
    /// missing on a node, rank 0's resume refusals) by each of them, with its rank and host.
    func agree(_ failure: Failure?, _ mpi: MPICollective) throws {
        let leadFailure = mpi.broadcast(failure?.message ?? "")
        let counts = mpi.sum([failure == nil ? 0 : 1, failure != nil && failure?.message == leadFailure ? 1 : 0,
                              failure?.flag == true ? 1 : 0])
        guard counts[0] > 0 else { return }
        let flag = counts[2] == counts[0]
        if let failure {
            func say(_ message: String) {
                Console.error(flag ? Gradflow.flagProblem(message, command: TrainCommand.self) : "gradflow: \(message)\n")
            }
            if Int(counts[1]) == mpi.size {
                if mpi.rank == 0 { say(failure.message) }
            } else {
                say("\(mpi.error(failure.message))")
            }
        }
        mpi.finish()
        throw ExitCode(flag ? ExitCode.validationFailure.rawValue : 1)
    }
}
