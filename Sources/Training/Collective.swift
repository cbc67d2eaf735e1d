import Telemetry

/// What a data-parallel run needs from its ranks, called by the trainer at fixed points of a step
/// (docs/ARCHITECTURE.md §2): average the gradient after the backward pass, sum the step's statistics, hand
/// rank 0's commands to every rank at the step boundary, and agree to stop. Every rank calls the
/// same methods in the same order, so an implementation may block until all ranks have arrived.
///
/// `SingleProcess` is the identity (one rank, no cost); the MPI implementation lives in the
/// DataParallel target, which the executable picks when it was started by `mpirun`.
public protocol Collective: AnyObject {
    /// This process's rank, 0 ..< size; rank 0 owns the display, the run file and the checkpoints.
    var rank: Int { get }
    /// Number of ranks.
    var size: Int { get }
    /// Replaces `values` on every rank by their mean over the ranks (in place, the same bits on
    /// every rank).
    func average(_ values: UnsafeMutablePointer<Float>, count: Int)
    /// Replaces `values` on every rank by their sum over the ranks (in place, the same bits on
    /// every rank).
    func sum(_ values: UnsafeMutablePointer<Double>, count: Int)
    /// True on every rank when any rank asks to stop.
    func agreeToStop(_ stop: Bool) -> Bool
    /// The step boundary in one exchange: rank 0's commands on every rank (other ranks'
    /// `commands` are ignored) and whether any rank asks to stop. Over a network each collective
    /// is a round trip, so the boundary of every step is one (two when commands come).
    func boundary(commands: [Command], stop: Bool) -> (commands: [Command], stop: Bool)
    /// The size of the gradient buckets the trainer hands to `beginAverage` while the backward
    /// pass runs; 0: one `average` of the whole gradient after it.
    var bucketBytes: Int { get }
    /// Starts `average(values, count:)` and may return before it is done (a bucket of the
    /// gradient that the backward pass has finished, reduced while it goes on). Until
    /// `finishAverages()` the caller makes no other collective call and leaves `values` alone.
    func beginAverage(_ values: UnsafeMutablePointer<Float>, count: Int)
    /// Returns when every average begun since the last call is done.
    func finishAverages()
}

extension Collective {
    public var bucketBytes: Int { 0 }
    public func beginAverage(_ values: UnsafeMutablePointer<Float>, count: Int) { average(values, count: count) }
    public func finishAverages() {}

    /// Sums an array over the ranks.
    public func sum(_ values: [Double]) -> [Double] {
        guard !values.isEmpty else { return values }
        var v = values
        v.withUnsafeMutableBufferPointer { sum($0.baseAddress!, count: $0.count) }
        return v
    }
}

/// One process: every collective operation is the identity.
public final class SingleProcess: Collective {
    public init() {}
    public var rank: Int { 0 }
    public var size: Int { 1 }
    public func average(_ values: UnsafeMutablePointer<Float>, count: Int) {}
    public func sum(_ values: UnsafeMutablePointer<Double>, count: Int) {}
    public func boundary(commands: [Command], stop: Bool) -> (commands: [Command], stop: Bool) { (commands, stop) }
    public func agreeToStop(_ stop: Bool) -> Bool { stop }
}
