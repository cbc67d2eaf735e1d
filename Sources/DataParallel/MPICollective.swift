import CMPI
import Foundation
import Telemetry
import Training

/// An error of one rank, named by its rank and host (`gradflow: rank 1 on node2: …`).
public struct RankError: Error, CustomStringConvertible {
    public var description: String
    public init(rank: Int, host: String, _ message: String) {
        description = "rank \(rank) on \(host): \(message)"
    }
}

/// The ranks of an `mpirun` job over Open MPI: the trainer's `Collective` (allreduce for the
/// gradient and the statistics, broadcast for the commands), plus the byte broadcast the
/// executable uses to hand a checkpoint from rank 0 to the others.
///
/// Reproducibility: `start()` pins Open MPI's allreduce to the ring algorithm (unless the
/// environment already chooses one). The ring reduces every segment on one rank in a fixed order
/// and sends the result to the others, so every rank holds the same bits and the same rank count
/// gives the same sums run after run (docs/SCALING.md).
public final class MPICollective: Collective {
    public let rank: Int
    public let size: Int
    /// This node's name as MPI reports it.
    public let host: String
    private var finalized = false

    /// The environment Open MPI sets in every process `mpirun` starts, before `main`.
    public static let launchVariable = "OMPI_COMM_WORLD_SIZE"

    /// Whether this process was started by `mpirun` (a plain start never touches MPI).
    public static var launchedByMPIRun: Bool {
        ProcessInfo.processInfo.environment[launchVariable] != nil
    }

    /// The MCA settings `start()` applies when the environment has not set them: the tuned
    /// collective component with allreduce algorithm 4 (ring), reproducible bit for bit.
    public static let pinnedParameters: [(String, String)] = [
        ("OMPI_MCA_coll_tuned_use_dynamic_rules", "1"),
        ("OMPI_MCA_coll_tuned_allreduce_algorithm", "4"),
    ]

    /// Initialises MPI (once per process; serialized threading, as the trainer thread makes the
    /// collective calls while the main thread draws the dashboard).
    public static func start() -> MPICollective {
        for (name, value) in pinnedParameters where getenv(name) == nil { setenv(name, value, 0) }
        var provided: Int32 = 0
        MPI_Init_thread(nil, nil, gf_mpi_thread_serialized(), &provided)
        var r: Int32 = 0, n: Int32 = 0
        MPI_Comm_rank(gf_mpi_comm_world(), &r)
        MPI_Comm_size(gf_mpi_comm_world(), &n)
        var name = [CChar](repeating: 0, count: Int(gf_mpi_max_processor_name()) + 1)
        var length: Int32 = 0
        MPI_Get_processor_name(&name, &length)
        return MPICollective(rank: Int(r), size: Int(n), host: String(cString: name))
    }

    private init(rank: Int, size: Int, host: String) {
        self.rank = rank
        self.size = size
        self.host = host
    }

    /// Ends MPI; call on every rank on a normal exit (all ranks must get here).
    public func finish() {
        guard !finalized else { return }
        finalized = true
        MPI_Finalize()
    }

    /// Ends the whole job at once (every rank), with `code` as mpirun's exit status.
    public func abort(code: Int32) -> Never {
        MPI_Abort(gf_mpi_comm_world(), code)
        exit(code)
    }

    /// An error naming this rank and its host.
    public func error(_ message: String) -> RankError { RankError(rank: rank, host: host, message) }

    // MARK: - Collective

    public func average(_ values: UnsafeMutablePointer<Float>, count: Int) {
        var done = 0
        while done < count {
            let n = min(count - done, Int(Int32.max))
            MPI_Allreduce(gf_mpi_in_place(), values + done, Int32(n), gf_mpi_float(), gf_mpi_sum(), gf_mpi_comm_world())
            done += n
        }
        let inverse = 1 / Float(size)
        for i in 0..<count { values[i] *= inverse }
    }

    public func sum(_ values: UnsafeMutablePointer<Double>, count: Int) {
        MPI_Allreduce(gf_mpi_in_place(), values, Int32(count), gf_mpi_double(), gf_mpi_sum(), gf_mpi_comm_world())
    }

    public func broadcast(_ commands: [Command]) -> [Command] {
        let bytes = broadcast(rank == 0 ? CommandCoding.encode(commands) : [])
        if rank == 0 { return commands }
        do {
            return try CommandCoding.decode(bytes)
        } catch {
            // Every rank runs the same build, so this is a bug, not bad input: end the job.
            FileHandle.standardError.write(Data("gradflow: \(self.error("cannot decode rank 0's commands (\(error))"))\n".utf8))
            abort(code: 1)
        }
    }

    public func agreeToStop(_ stop: Bool) -> Bool {
        var flag: Int64 = stop ? 1 : 0
        MPI_Allreduce(gf_mpi_in_place(), &flag, 1, gf_mpi_int64(), gf_mpi_max(), gf_mpi_comm_world())
        return flag != 0
    }

    // MARK: - Bytes

    /// Rank 0's `bytes` on every rank (other ranks' arguments are ignored).
    public func broadcast(_ bytes: [UInt8]) -> [UInt8] {
        var length = Int64(rank == 0 ? bytes.count : 0)
        MPI_Bcast(&length, 1, gf_mpi_int64(), 0, gf_mpi_comm_world())
        var buffer = rank == 0 ? bytes : [UInt8](repeating: 0, count: Int(length))
        var done = 0
        buffer.withUnsafeMutableBytes { raw in
            while done < Int(length) {
                let n = min(Int(length) - done, Int(Int32.max))
                MPI_Bcast(raw.baseAddress! + done, Int32(n), gf_mpi_byte(), 0, gf_mpi_comm_world())
                done += n
            }
        }
        return buffer
    }

    /// Rank 0's text on every rank.
    public func broadcast(_ text: String) -> String {
        String(decoding: broadcast(Array(text.utf8)), as: UTF8.self)
    }
}
