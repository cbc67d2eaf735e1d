import Telemetry
import Terminal

/// Everything that can happen to the dashboard: the messages of `update`.
public enum DashboardAction: Sendable, Equatable {
    case key(Key)
    /// A frame passed; `now` is the runner's clock in seconds.
    case tick(now: Double)
    case resize(Size)
    case header(RunHeader)
    case records([Record])
    case replayStatus(ReplayStatus)
    /// A command the runner could not hand on, and why (attached: the channel could not be written).
    case notSent(Command, String)
    /// Attached: seconds since the run file was last written (nil when it cannot be told).
    case runFileAge(Double?)
    /// A replay restarted its stream: forget what the records built, keep the UI.
    case resetRecords
    /// SIGINT / SIGTERM: like q.
    case interrupt
}

/// A side effect `update` asks for; the runner carries it out.
public enum DashboardEffect: Sendable, Equatable {
    case command(Command)
    case replay(ReplayAction)
    /// Return from the run loop now.
    case quit
    /// Replay: leave the loop to fork the run from its checkpoint at this step (key f).
    case fork(step: Int)
}
