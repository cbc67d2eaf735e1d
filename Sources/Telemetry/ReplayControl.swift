import RunFormat

/// What a replay is doing now, for the dashboard's header.
public struct ReplayStatus: Sendable, Equatable {
    /// Playback rate relative to the recorded pace; 0 means as fast as possible.
    public var speed: Double
    public var paused: Bool
    /// Step of the last record published.
    public var position: Int
    public var finished: Bool
    /// Incremented whenever the replay restarts its stream (a backward seek): an observer that sees
    /// a new generation discards what it built from earlier records and drains afresh.
    public var generation: Int
    /// Steps in the recording (its last record's step when the replay started; nil if unknown).
    public var recordedSteps: Int?

    public init(speed: Double, paused: Bool, position: Int, finished: Bool, generation: Int, recordedSteps: Int? = nil) {
        self.speed = speed
        self.paused = paused
        self.position = position
        self.finished = finished
        self.generation = generation
        self.recordedSteps = recordedSteps
    }
}

/// Something a user can ask of a replay.
public enum ReplayAction: Sendable, Equatable {
    case togglePause
    case faster
    case slower
    /// Move by this many steps (negative: back).
    case seek(steps: Int)
    /// While paused: publish the next record.
    case stepOnce
}

/// The dashboard's handle on a replay (implemented by Telemetry's replayer).
public protocol ReplayControl: AnyObject, Sendable {
    var status: ReplayStatus { get }
    func perform(_ action: ReplayAction)
}
