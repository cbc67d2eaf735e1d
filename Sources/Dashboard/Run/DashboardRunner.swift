import Foundation
import Telemetry
import Terminal
import Themes

/// Settings of a dashboard session.
public struct DashboardOptions: Sendable {
    /// Themes `t` cycles through; the first is used at start (ThemeLoader.catalog builds this).
    public var themes: [Theme]
    public var graphStyle: GraphStyle
    /// Shown in the footer.
    public var runFile: String?
    /// Seconds between frames (15 fps by default).
    public var frameInterval: Double
    /// Return by itself once the end record has arrived (for non-interactive use).
    public var exitWhenFinished: Bool
    /// Most records folded per frame, so a replay at full speed cannot stall the screen.
    public var maxRecordsPerFrame: Int
    /// Reference runs for the loss chart (`--compare`).
    public var references: [ReferenceRun] = []
    /// Replay: the steps of the run's checkpoints, which `f` can fork from.
    public var forkSteps: [Int] = []
    /// `gradflow attach`: the records come from a run another process writes and the commands go
    /// to its command channel (with ids starting with this prefix); q leaves the run going.
    public var attachedCommandPrefix: String?
    /// Attached: seconds without a record before the run is shown as silent.
    public var silentAfter = RunCatalog.liveWindow
    /// A warning for the status line as the dashboard opens (attach: a channel the trainer will
    /// not read).
    public var openingWarning: String?

    public init(themes: [Theme] = [Theme.default], graphStyle: GraphStyle = .braille, runFile: String? = nil,
                frameInterval: Double = 1.0 / 15.0, exitWhenFinished: Bool = false, maxRecordsPerFrame: Int = 20_000) {
        self.themes = themes.isEmpty ? [Theme.default] : themes
        self.graphStyle = graphStyle
        self.runFile = runFile
        self.frameInterval = frameInterval
        self.exitWhenFinished = exitWhenFinished
        self.maxRecordsPerFrame = maxRecordsPerFrame
    }
}

/// How a dashboard session ended.
public enum DashboardExit: Sendable, Equatable {
    /// The user left (replay, read-only view, or q pressed twice).
    case quit
    /// The run's end record arrived (after q / an interrupt, or with `exitWhenFinished`).
    case ended(EndRecord)
    /// `.stop` was sent but no end record came within `DashboardState.quitTimeout` seconds.
    case stopTimedOut
    /// Replay, key f: fork the run from its checkpoint at this step.
    case fork(step: Int)
}

/// Drives a dashboard: reads keys with a short timeout (the frame interval), drains the record
/// subscription, folds everything into the state through `update`, renders, and carries out the
/// effects (commands to the trainer, actions to a replay). The trainer never waits for it.
public final class DashboardRunner {
    public let screen: Screen
    public let subscription: BusSubscription
    public let commands: CommandSink?
    public let replay: ReplayControl?
    public let options: DashboardOptions
    public private(set) var state: DashboardState
    private var generation: Int?
    private let start = DispatchTime.now().uptimeNanoseconds

    public init(screen: Screen, subscription: BusSubscription, commands: CommandSink?, replay: ReplayControl?,
                options: DashboardOptions = DashboardOptions()) {
        self.screen = screen
        self.subscription = subscription
        self.commands = commands
        self.replay = replay
        self.options = options
        let mode: DashboardMode = options.attachedCommandPrefix != nil ? .attached : replay == nil ? .live : .replay
        state = DashboardState(mode: mode, canControl: mode.steers && commands != nil,
                               graphStyle: options.graphStyle, themeNames: options.themes.map(\.name),
                               runFile: options.runFile, colorModeLabel: screen.colorMode.label)
        state.commandIdPrefix = options.attachedCommandPrefix ?? ""
        state.silentAfter = options.silentAfter
        if let warning = options.openingWarning { state.status = StatusMessage(text: warning, isError: true, since: 0) }
        state.references = options.references
        state.forkSteps = options.forkSteps
    }

    private var now: Double { Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9 }

    /// Runs until the user quits or the run ends (see `DashboardExit`). `interrupted` is polled
    /// every frame; when it turns true the dashboard behaves as if q was pressed.
    public func run(interrupted: () -> Bool = { false }) -> DashboardExit {
        var interruptSeen = false
        var exit: DashboardExit?
        var catchingUp = false
        while exit == nil {
            var actions: [DashboardAction] = []
            // While records wait (a long run being read in), frames follow each other at once.
            if let key = screen.readKey(timeout: catchingUp ? 0 : options.frameInterval) {
                actions.append(.key(key))
                var more = 0
                while more < 32, let k = screen.readKey(timeout: 0) { actions.append(.key(k)); more += 1 }
            }
            let size = screen.size
            if size != state.size { actions.append(.resize(size)) }
            if let header = subscription.header, header != state.data.header { actions.append(.header(header)) }
            // Attached: is the writer alive? (a stat per frame)
            if state.mode == .attached, let file = options.runFile {
                actions.append(.runFileAge(RunFileLocation.secondsSinceModified(file)))
            }
            if let replay, state.mode == .replay {
                let status = replay.status
                if status != state.replayStatus { actions.append(.replayStatus(status)) }
            }
            // The generation comes with the records, so a replay that starts over (a backward
            // seek restarts the bus) never mixes records from before and after.
            let batch = subscription.drainBatch(max: options.maxRecordsPerFrame)
            if let g = generation, g != batch.generation { actions.append(.resetRecords) }
            generation = batch.generation
            if !batch.records.isEmpty { actions.append(.records(batch.records)) }
            catchingUp = batch.records.count >= options.maxRecordsPerFrame
            if interrupted() && !interruptSeen {
                interruptSeen = true
                actions.append(.interrupt)
            }
            actions.append(.tick(now: now))

            var effects: [DashboardEffect] = []
            for a in actions { effects += state.apply(a) }
            render()
            for effect in effects {
                switch effect {
                case let .command(c):
                    if let problem = commands?.send(c) { _ = state.apply(.notSent(c, problem)) }
                case let .replay(r): replay?.perform(r)
                case .quit: exit = exitReason()
                case let .fork(step): exit = .fork(step: step)
                }
            }
            if exit == nil, state.quitting, subscription.isFinished { exit = exitReason() }
            if exit == nil, options.exitWhenFinished, let end = state.data.end { exit = .ended(end) }
        }
        return exit!
    }

    private func exitReason() -> DashboardExit {
        if let end = state.data.end, state.quitting || options.exitWhenFinished { return .ended(end) }
        if state.quitting, let t = state.quitRequestedAt, state.now - t > DashboardState.quitTimeout { return .stopTimedOut }
        return .quit
    }

    private func render() {
        let theme = options.themes[state.themeIndex % options.themes.count]
        screen.present(DashboardView.render(state, size: state.size, theme: theme))
    }
}
