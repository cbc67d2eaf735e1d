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
/// gradient, the statistics and the step boundary; broadcast for the commands' bytes), plus the
/// byte broadcast the executable uses to hand a checkpoint from rank 0 to the others.
///
/// Reproducibility: every reduction is a non-blocking allreduce (libnbc), and `start()` pins it
/// to the ring algorithm (unless the environment already chooses one). The ring reduces every
/// segment on one rank in a fixed order and sends the result to the others, so every rank holds
/// the same bits and the same rank count gives the same sums run after run (docs/SCALING.md).
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

    /// This process's rank as `mpirun` set it in the environment (Open MPI's
    /// `OMPI_COMM_WORLD_RANK`), before MPI has started; nil outside mpirun.
    public static var rankFromEnvironment: Int? {
        ProcessInfo.processInfo.environment["OMPI_COMM_WORLD_RANK"].flatMap { Int($0) }
    }

    /// How many of the job's ranks run on this machine (Open MPI's `OMPI_COMM_WORLD_LOCAL_SIZE`;
    /// 1 when it is not set): they share its memory.
    public static var ranksOnThisMachine: Int {
        ProcessInfo.processInfo.environment["OMPI_COMM_WORLD_LOCAL_SIZE"].flatMap { Int($0) }.map { Swift.max(1, $0) } ?? 1
    }

    /// The MCA settings `start()` applies when the environment has not set them: libnbc's
    /// non-blocking allreduce (all that the gradient buckets and the per-step reductions use; no
    /// blocking collective is called) on its ring algorithm, reproducible bit for bit.
    public static let pinnedParameters: [(String, String)] = [
        ("OMPI_MCA_coll_libnbc_iallreduce_algorithm", "1"),
    ]

    /// The gradient bucket size when `--bucket-mb` is not given: 1 MB. Measured on the emulated
    /// cluster at S over 1 Gb/s (docs/SCALING.md): 0.25 MB waited less after the backward pass but
    /// made more calls, 4 MB (one bucket at S) did not overlap; at M every matrix is a bucket.
    public static let defaultBucketBytes = 1 << 20

    /// Microseconds a waiting rank sleeps between tests of a pending operation
    /// (`GRADFLOW_MPI_POLL_US`, default 50).
    static let pollMicroseconds: Int32 = {
        if let v = ProcessInfo.processInfo.environment["GRADFLOW_MPI_POLL_US"], let n = Int32(v), n >= 0 { return n }
        return 50
    }()

    /// Initialises MPI (once per process; serialized threading, as the trainer thread makes the
    /// collective calls while the main thread draws the dashboard).
    /// `bucketBytes`: the size of the gradient buckets reduced while the backward pass runs (0:
    /// one blocking allreduce of the whole gradient after it).
    public static func start(bucketBytes: Int = defaultBucketBytes) -> MPICollective {
        for (name, value) in pinnedParameters where getenv(name) == nil { setenv(name, value, 0) }
        var provided: Int32 = 0
        MPI_Init_thread(nil, nil, gf_mpi_thread_serialized(), &provided)
        var r: Int32 = 0, n: Int32 = 0
        MPI_Comm_rank(gf_mpi_comm_world(), &r)
        MPI_Comm_size(gf_mpi_comm_world(), &n)
        var name = [CChar](repeating: 0, count: Int(gf_mpi_max_processor_name()) + 1)
        var length: Int32 = 0
        MPI_Get_processor_name(&name, &length)
        return MPICollective(rank: Int(r), size: Int(n), host: String(cString: name), bucketBytes: bucketBytes)
    }

    private init(rank: Int, size: Int, host: String, bucketBytes: Int) {
        self.rank = rank
        self.size = size
        self.host = host
        self.bucketBytes = max(0, bucketBytes)
    }

    public let bucketBytes: Int

    /// Ends MPI; call on every rank on a normal exit (all ranks must get here).
    public func finish() {
        guard !finalized else { return }
        finalized = true
        communication?.stop()
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

    /// Every wait sleeps between tests instead of spinning (`gf_mpi_wait_sleeping`); an error
    /// ends the job (Open MPI's default handler aborts before that).
    private func check(_ rc: Int32, _ what: String) {
        guard rc != gf_mpi_success() else { return }
        Console.error("gradflow: \(error("\(what) failed (MPI error \(rc))"))\n")
        abort(code: 1)
    }

    private func allreduce(_ buffer: UnsafeMutableRawPointer, count: Int, type: OpaquePointer?, op: OpaquePointer?,
                           stride: Int) {
        var done = 0
        while done < count {
            let n = min(count - done, Int(Int32.max))
            check(gf_mpi_allreduce_sleeping(buffer + done * stride, Int32(n), type, op, Self.pollMicroseconds), "allreduce")
            done += n
        }
    }

    public func average(_ values: UnsafeMutablePointer<Float>, count: Int) {
        allreduce(values, count: count, type: gf_mpi_float(), op: gf_mpi_sum(), stride: MemoryLayout<Float>.stride)
        let inverse = 1 / Float(size)
        for i in 0..<count { values[i] *= inverse }
    }

    public func sum(_ values: UnsafeMutablePointer<Double>, count: Int) {
        allreduce(values, count: count, type: gf_mpi_double(), op: gf_mpi_sum(), stride: MemoryLayout<Double>.stride)
    }

    // Gradient buckets: a communication thread averages each one while the trainer thread goes on
    // with the backward pass. The trainer thread makes no MPI call between `beginAverage` and
    // `finishAverages`, so MPI's serialized threading holds (one thread in MPI at a time).

    private var communication: CommunicationThread?

    public func beginAverage(_ values: UnsafeMutablePointer<Float>, count: Int) {
        if communication == nil {
            communication = CommunicationThread { [unowned self] pointer, count in self.average(pointer, count: count) }
        }
        communication!.submit(values, count: count)
    }

    public func finishAverages() {
        communication?.waitUntilIdle()
    }

    /// Rank 0's commands from their bytes; a failure ends the job.
    private func decodeCommands(_ bytes: [UInt8]) -> [Command] {
        do {
            return try CommandCoding.decode(bytes)
        } catch {
            // Every rank runs the same build, so this is a bug, not bad input: end the job.
            Console.error("gradflow: \(self.error("cannot decode rank 0's commands (\(error))"))\n")
            abort(code: 1)
        }
    }

    public func agreeToStop(_ stop: Bool) -> Bool {
        var flag: Int64 = stop ? 1 : 0
        check(gf_mpi_allreduce_sleeping(&flag, 1, gf_mpi_int64(), gf_mpi_max(), Self.pollMicroseconds), "allreduce")
        return flag != 0
    }

    /// One allreduce (max) of the stop vote and the length of rank 0's encoded commands; the
    /// commands' bytes follow in a broadcast only when there are some.
    public func boundary(commands: [Command], stop: Bool) -> (commands: [Command], stop: Bool) {
        let bytes = rank == 0 ? CommandCoding.encode(commands) : []
        var words: [Int64] = [stop ? 1 : 0, Int64(bytes.count)]
        check(gf_mpi_allreduce_sleeping(&words, 2, gf_mpi_int64(), gf_mpi_max(), Self.pollMicroseconds), "allreduce")
        let agreed = words[0] != 0
        guard words[1] > 0 else { return ([], agreed) }
        let received = broadcast(bytes, length: Int(words[1]))
        return (rank == 0 ? commands : decodeCommands(received), agreed)
    }

    // MARK: - Bytes

    /// Rank 0's `bytes` on every rank (other ranks' arguments are ignored).
    public func broadcast(_ bytes: [UInt8]) -> [UInt8] {
        var length = Int64(rank == 0 ? bytes.count : 0)
        check(gf_mpi_bcast_sleeping(&length, 1, gf_mpi_int64(), Self.pollMicroseconds), "broadcast")
        return broadcast(bytes, length: Int(length))
    }

    /// Rank 0's `bytes`, whose length every rank knows, on every rank.
    private func broadcast(_ bytes: [UInt8], length: Int) -> [UInt8] {
        var buffer = rank == 0 ? bytes : [UInt8](repeating: 0, count: length)
        var done = 0
        buffer.withUnsafeMutableBytes { raw in
            while done < length {
                let n = min(length - done, Int(Int32.max))
                check(gf_mpi_bcast_sleeping(raw.baseAddress! + done, Int32(n), gf_mpi_byte(), Self.pollMicroseconds), "broadcast")
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

/// One thread that runs submitted reductions in order, each to its end, while the submitting
/// thread goes on; `waitUntilIdle` returns when all submitted ones are done.
final class CommunicationThread: @unchecked Sendable {
    private let condition = NSCondition()
    private var queue: [(UnsafeMutablePointer<Float>, Int)] = []
    private var busy = false
    private var stopping = false
    private let work: (UnsafeMutablePointer<Float>, Int) -> Void

    init(_ work: @escaping (UnsafeMutablePointer<Float>, Int) -> Void) {
        self.work = work
        let thread = Thread { [self] in loop() }
        thread.name = "gradflow-allreduce"
        thread.start()
    }

    func submit(_ values: UnsafeMutablePointer<Float>, count: Int) {
        condition.lock()
        queue.append((values, count))
        condition.broadcast()
        condition.unlock()
    }

    func waitUntilIdle() {
        condition.lock()
        while busy || !queue.isEmpty { condition.wait() }
        condition.unlock()
    }

    func stop() {
        condition.lock()
        stopping = true
        condition.broadcast()
        condition.unlock()
    }

    private func loop() {
        while true {
            condition.lock()
            while queue.isEmpty && !stopping { condition.wait() }
            if queue.isEmpty { condition.unlock(); return }
            let (values, count) = queue.removeFirst()
            busy = true
            condition.unlock()
            work(values, count)
            condition.lock()
            busy = false
            condition.broadcast()
            condition.unlock()
        }
    }
}
