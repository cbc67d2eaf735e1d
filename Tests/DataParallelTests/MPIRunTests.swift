import Foundation
import Telemetry
import TestSupport
import Testing

/// `mpirun -np 2 gradflow train` end to end, with a tiny model: the same losses as one process,
/// bit-identical repeats, a weight change from rank 0 applied on every rank at the same step, a
/// rank killed with kill -9 ending the job, and the checkpoint resumed at another rank count.
/// Skipped only when mpirun is not installed.
@Suite(.serialized) struct MPIRunTests {
    static let model = ["--layers", "2", "--heads", "2", "--dim", "32", "--context", "32", "--batch", "8",
                        "--threads", "1", "--eval-windows", "8", "--no-tui"]

    @Test(.enabled(if: MPIRun.mpirun != nil, "mpirun is not installed (apt-get install openmpi-bin libopenmpi-dev)"),
          .timeLimit(.minutes(10)))
    func twoRanksMatchOneProcessAndApplyRankZerosCommandsEverywhere() throws {
        let binary = try #require(MPIRun.binary, "gradflow binary not found next to the test bundle (set GRADFLOW_BINARY)")
        let dir = try MPIRun.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // A scripted weight change (rank 0's, broadcast) before step 10, with its twin window, and
        // each rank's state at the end.
        let args = ["train"] + Self.model + ["--steps", "40", "--eval-every", "20", "--change", "10:context.0=3",
                                             "--debug-fingerprint"]
        // Timeouts here are backstops for a hung job (each run takes seconds on a quiet machine).
        let one = MPIRun.run(binary, args + ["--out", dir + "/one"], timeout: 300)
        #expect(one.status == 0, "single process failed:\n\(one.output)")
        // A and B: the default bucket (the whole tiny gradient is one bucket); C: a bucket per
        // block, reduced while the backward pass runs; D: one allreduce after it.
        var twoRuns: [(status: Int32, output: String)] = []
        for (name, extra) in [("twoA", []), ("twoB", []), ("twoC", ["--bucket-mb", "0.01"]), ("twoD", ["--bucket-mb", "0"])] {
            twoRuns.append(MPIRun.run(MPIRun.mpirun!, MPIRun.mpirunArguments(ranks: 2) + [binary] + args + extra + ["--out", dir + "/" + name],
                                      timeout: 300))
        }
        for r in twoRuns { #expect(r.status == 0, "mpirun -np 2 failed:\n\(r.output)") }

        let single = try MPIRun.records(dir + "/one/run.jsonl")
        let a = try MPIRun.records(dir + "/twoA/run.jsonl")
        let b = try MPIRun.records(dir + "/twoB/run.jsonl")
        let c = try MPIRun.records(dir + "/twoC/run.jsonl")
        let d = try MPIRun.records(dir + "/twoD/run.jsonl")
        #expect(a.header.ranks == 2 && a.header.threads == 1, "the header records 2 ranks × 1 thread")
        #expect(single.header.ranks == 1)
        #expect(a.losses.count == 40 && single.losses.count == 40)
        // Same rank count, threads and seed: the same bits.
        #expect(a.losses == b.losses, "two runs with 2 ranks differ")
        // Two ranks add two numbers per element, in either order the same bits: the buckets
        // (overlapped or not) change nothing.
        #expect(c.losses == a.losses, "per-block buckets during the backward pass change the losses")
        #expect(d.losses == a.losses, "one allreduce after the backward pass changes the losses")
        for r in [c, d] {
            let worst = zip(r.losses, single.losses).map { abs($0 - $1) }.max() ?? .infinity
            #expect(worst < 1e-5, "2 ranks (buckets) vs 1 process: largest loss difference \(worst)")
        }
        // Against one process: float rounding only (the sums run in another order); measured 2.4e-7.
        let worst = zip(a.losses, single.losses).map { abs($0 - $1) }.max() ?? .infinity
        #expect(worst < 1e-5, "2 ranks vs 1 process: largest loss difference \(worst)")
        let lastEval = zip(a.evalLosses, single.evalLosses).map { abs($0 - $1) }.max() ?? .infinity
        #expect(!a.evalLosses.isEmpty && lastEval < 1e-5, "validation losses differ by \(lastEval)")
        // The change took effect at step 10 (the run file's event) on every rank (the ranks' states agree).
        #expect(a.weightEventSteps == [10], "weight events at \(a.weightEventSteps)")
        let prints = MPIRun.fingerprints(twoRuns[0].output)
        #expect(prints.keys.sorted() == [0, 1], "each rank reports its state:\n\(twoRuns[0].output)")
        #expect(Set(prints.values).count == 1, "the ranks' states differ: \(prints)")
        // Only rank 0 prints progress.
        #expect(twoRuns[0].output.components(separatedBy: "run file:").count == 2, "one rank prints the summary:\n\(twoRuns[0].output)")
    }

    @Test(.enabled(if: MPIRun.mpirun != nil, "mpirun is not installed (apt-get install openmpi-bin libopenmpi-dev)"),
          .timeLimit(.minutes(20)))
    func aKilledRankEndsTheJobAndTheCheckpointResumesAtAnotherRankCount() throws {
        let binary = try #require(MPIRun.binary, "gradflow binary not found next to the test bundle (set GRADFLOW_BINARY)")
        let dir = try MPIRun.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let out = dir + "/run", runFile = out + "/run.jsonl"
        let args = ["train"] + Self.model + ["--steps", "3000", "--eval-every", "1000", "--checkpoint-every", "50", "--out", out]
        let job = try MPIRun.start(MPIRun.mpirun!, MPIRun.mpirunArguments(ranks: 2) + [binary] + args)
        defer { job.kill() }
        // Wait for a checkpoint and a few steps after it, then kill rank 1 (the deadline is a
        // backstop: the wait is for records in the run file).
        let deadline = Date().addingTimeInterval(300)
        var checkpointStep: Int?
        while Date() < deadline {
            let text = (try? String(contentsOfFile: runFile, encoding: .utf8)) ?? ""
            #expect(!text.contains("\"type\":\"end\""), "the run ended before the kill; make it longer")
            if let c = MPIRun.lastCheckpoint(text), let s = MPIRun.lastStep(text), s >= c + 5 { checkpointStep = c; break }
            Thread.sleep(forTimeInterval: 0.02)
        }
        let ckpt = try #require(checkpointStep, "no checkpoint within 300 s")
        let victim = try #require(MPIRun.rankProcess(rank: 1, argument: out), "rank 1's process not found")
        let killed = Date()
        Foundation.kill(victim, SIGKILL)
        // The job must end by itself (within seconds on a quiet machine); 120 s only tells a hung
        // job from a slow one on a busy machine.
        let status = job.wait(timeout: 120)
        #expect(status != nil, "the job still runs \(Date().timeIntervalSince(killed)) s after rank 1 was killed")
        #expect(status != 0, "mpirun reports the failure")

        // The run file reads back to its last whole line.
        let before = try MPIRun.records(runFile)
        #expect(before.losses.count >= ckpt + 5)
        #expect(before.issues.allSatisfy { $0.kind == .tornLastLine }, "unexpected damage: \(before.issues)")

        // Resume the last checkpoint with 4 ranks (rank 0 reads it and sends it to the others).
        let path = out + String(format: "/ckpt-%06d.gfck", ckpt)
        let resumed = MPIRun.run(MPIRun.mpirun!, MPIRun.mpirunArguments(ranks: 4) + [binary, "train", "--resume", path, "--no-tui"],
                                 timeout: 1_080)   // about 30 s on a quiet 2-core machine, 415 s beside two busy loops; 4 ranks oversubscribe it
        #expect(resumed.status == 0, "resume failed:\n\(resumed.output)")
        let after = try MPIRun.records(runFile)
        #expect(after.endReasons.last == "completed", "the resumed run completes: \(after.endReasons)")
        #expect(after.resumeMessages.last?.contains("4 ranks × 1 threads") == true,
                "the resume event names this session's ranks (the header keeps the first's): \(after.resumeMessages)")
        // The steps the killed run did after its checkpoint are done again at 4 ranks: same
        // losses up to float rounding.
        let redone = after.stepLosses.suffix(from: before.stepLosses.count).prefix { $0.step < before.stepLosses.last!.step }
        #expect(redone.first?.step == ckpt, "the resumed run starts at its checkpoint's step")
        var compared = 0
        for r in redone {
            guard let old = before.stepLosses.last(where: { $0.step == r.step }) else { continue }
            #expect(abs(old.loss - r.loss) < 1e-4, "step \(r.step): \(old.loss) before the kill, \(r.loss) resumed at 4 ranks")
            compared += 1
        }
        #expect(compared >= 5)
        #expect(after.stepLosses.last?.step == 2999)

        // Flag problems found once MPI has started end every rank with status 64, as in one
        // process, said once: rank 0's resume refusal (before the ranks agree, not MPI_Abort from a
        // running job) and a batch that the ranks do not divide.
        let older = MPIRun.run(MPIRun.mpirun!, MPIRun.mpirunArguments(ranks: 2) + [binary, "train", "--resume", path, "--no-tui"],
                               timeout: 300)
        #expect(older.status == 64 && older.output.components(separatedBy: "the run has later checkpoints").count == 2
                && !older.output.contains("MPI_ABORT"), "\(older.output)")
        let split = MPIRun.run(MPIRun.mpirun!, MPIRun.mpirunArguments(ranks: 3) + [binary] + ["train"] + Self.model + ["--out", dir + "/split"],
                               timeout: 300)
        #expect(split.status == 64 && split.output.components(separatedBy: "does not divide evenly").count == 2, "\(split.output)")
    }
}

/// Two ranks in two network namespaces (bench/cluster.sh), over TCP through a 1 Gb/s emulated
/// link: the same losses, bit for bit, as two ranks over shared memory, with the gradient reduced
/// in buckets during the backward pass. Needs root (namespaces, tc); skipped otherwise.
@Suite(.serialized) struct ClusterTests {
    @Test(.enabled(if: MPIRun.mpirun != nil && MPIRun.canEmulateCluster,
                   "needs root with network namespaces and tc, and mpirun (bench/cluster.sh); skipped"),
          .timeLimit(.minutes(15)))
    func twoRanksOverTCPBetweenNamespacesMatchSharedMemory() throws {
        let binary = try #require(MPIRun.binary, "gradflow binary not found next to the test bundle (set GRADFLOW_BINARY)")
        let dir = try MPIRun.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let args = ["train"] + MPIRunTests.model + ["--steps", "20", "--eval-every", "10", "--bucket-mb", "0.01"]
        let shm = MPIRun.run(MPIRun.mpirun!, MPIRun.mpirunArguments(ranks: 2) + [binary] + args + ["--out", dir + "/shm"], timeout: 300)
        #expect(shm.status == 0, "mpirun -np 2 over shared memory failed:\n\(shm.output)")
        let tcp = MPIRun.run(ChildProcess.which("timeout") ?? "/usr/bin/timeout",
                             ["300", "/bin/bash", MPIRun.clusterScript, "2", "1gbit", "--", binary] + args + ["--out", dir + "/tcp"],
                             timeout: 330)   // backstops for a hung job; timeout(1) sends SIGTERM: cluster.sh tears its namespaces down
        #expect(tcp.status == 0, "bench/cluster.sh 2 1gbit failed:\n\(tcp.output)")
        let a = try MPIRun.records(dir + "/shm/run.jsonl")
        let b = try MPIRun.records(dir + "/tcp/run.jsonl")
        #expect(a.losses.count == 20 && b.header.ranks == 2)
        #expect(a.losses == b.losses, "TCP between namespaces and shared memory give different losses")
        #expect(a.evalLosses == b.evalLosses, "validation losses differ")
    }
}

/// Where the pieces are and how to run them.
enum MPIRun {
    /// bench/cluster.sh in this checkout.
    static let clusterScript: String = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("bench/cluster.sh").path

    /// Root, the tools, and the right to create a network namespace (a container may deny it even
    /// to root).
    static let canEmulateCluster: Bool = {
        guard getuid() == 0, FileManager.default.isExecutableFile(atPath: clusterScript),
              let ip = ChildProcess.which("ip"), ChildProcess.which("tc") != nil else { return false }
        let name = "gfprobe\(getpid())"
        guard ChildProcess.run(ip, ["netns", "add", name], timeout: 10).status == 0 else { return false }
        _ = ChildProcess.run(ip, ["netns", "del", name], timeout: 10)
        return true
    }()

    static let mpirun: String? = ChildProcess.which("mpirun")
    static let binary: String? = ChildProcess.gradflow

    /// mpirun on one machine, as root if need be, shared memory only (docs: README, MPI).
    static func mpirunArguments(ranks: Int) -> [String] {
        ["-np", "\(ranks)", "--oversubscribe"]
    }

    static let environment: [String: String] = {
        var env = ProcessInfo.processInfo.environment
        env["OMPI_ALLOW_RUN_AS_ROOT"] = "1"
        env["OMPI_ALLOW_RUN_AS_ROOT_CONFIRM"] = "1"
        env["OMPI_MCA_btl"] = "self,vader"
        env["OMPI_MCA_oob_tcp_if_include"] = "lo"
        return env
    }()

    static func temporaryDirectory() throws -> String {
        let dir = NSTemporaryDirectory() + "gradflow-mpi-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }

    /// Starts a program with the MPI environment; `kill()` ends it (mpirun takes its ranks with it).
    static func start(_ executable: String, _ arguments: [String]) throws -> ChildProcess {
        try ChildProcess.start(executable, arguments, environment: environment)
    }

    /// Runs a program with the MPI environment to its end (killed after `timeout` seconds).
    static func run(_ executable: String, _ arguments: [String], timeout: Double) -> (status: Int32, output: String) {
        ChildProcess.run(executable, arguments, environment: environment, timeout: timeout)
    }

    /// The process of `rank` whose command line contains `argument` (found through /proc).
    static func rankProcess(rank: Int, argument: String) -> pid_t? {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        for name in entries {
            guard let pid = pid_t(name),
                  let cmd = FileManager.default.contents(atPath: "/proc/\(name)/cmdline"),
                  let env = FileManager.default.contents(atPath: "/proc/\(name)/environ") else { continue }
            let args = cmd.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
            let vars = env.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
            if args.first?.hasSuffix("gradflow") == true, args.contains(argument),
               vars.contains("OMPI_COMM_WORLD_RANK=\(rank)") { return pid }
        }
        return nil
    }

    static func lastCheckpoint(_ text: String) -> Int? {
        text.split(separator: "\n").last { $0.hasPrefix("{\"type\":\"checkpoint\"") }.flatMap(step)
    }

    static func lastStep(_ text: String) -> Int? {
        text.split(separator: "\n").dropLast().last { $0.hasPrefix("{\"type\":\"step\"") }.flatMap(step)
    }

    static func step(_ line: Substring) -> Int? {
        guard let r = line.range(of: "\"step\":") else { return nil }
        return Int(line[r.upperBound...].prefix { $0.isNumber })
    }

    /// "gradflow: rank R step S state HASH" lines → rank: hash.
    static func fingerprints(_ output: String) -> [Int: String] {
        var result: [Int: String] = [:]
        for line in output.split(separator: "\n") where line.hasPrefix("gradflow: rank ") && line.contains(" state ") {
            let parts = line.split(separator: " ")
            if parts.count >= 7, let rank = Int(parts[2]) { result[rank] = String(parts[6]) }
        }
        return result
    }

    struct Records {
        var header: RunHeader
        var stepLosses: [(step: Int, loss: Double)] = []
        var evalLosses: [Double] = []
        var weightEventSteps: [Int] = []
        var resumeMessages: [String] = []
        var endReasons: [String] = []
        var issues: [ReadIssue] = []
        var losses: [Double] { stepLosses.map(\.loss) }
    }

    static func records(_ path: String) throws -> Records {
        let reader = try RunFileReader(path: path)
        var r = Records(header: reader.header)
        try reader.forEachRecord { record in
            switch record {
            case let .step(s): r.stepLosses.append((s.step, s.loss))
            case let .eval(e): r.evalLosses.append(e.domains.first?.loss ?? .nan)
            case let .event(e) where e.kind == .weight: r.weightEventSteps.append(e.step)
            case let .event(e) where e.kind == .resume_run: r.resumeMessages.append(e.message)
            case let .end(e): r.endReasons.append(e.reason.rawValue)
            default: break
            }
        }
        r.issues = reader.issues
        return r
    }
}
