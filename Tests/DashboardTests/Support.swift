import Foundation
import Telemetry
import Terminal
import Themes
@testable import Dashboard

/// A command sink that remembers what it got.
final class CommandRecorder: CommandSink, @unchecked Sendable {
    private let lock = NSLock()
    private var _commands: [Command] = []
    var commands: [Command] { lock.lock(); defer { lock.unlock() }; return _commands }
    func send(_ command: Command) -> String? { lock.lock(); _commands.append(command); lock.unlock(); return nil }
}

/// A live state with the synthetic header and `steps` steps of records.
func makeState(steps: Int = 1240, mode: DashboardMode = .live, size: Size = Size(width: 150, height: 44)) -> DashboardState {
    var state = DashboardState(mode: mode, canControl: mode == .live, themeNames: BuiltinThemes.names,
                               runFile: "runs/synthetic/run.jsonl", colorModeLabel: "256 colours")
    _ = state.apply(.header(SyntheticRun.header()))
    _ = state.apply(.resize(size))
    _ = state.apply(.records(SyntheticRun.records(steps: steps)))
    return state
}

/// Renders into a BufferScreen and returns it.
func screen(_ state: DashboardState, _ width: Int, _ height: Int, theme: Theme = .default) -> BufferScreen {
    let s = BufferScreen(size: Size(width: width, height: height))
    s.present(DashboardView.render(state, size: s.size, theme: theme))
    return s
}

/// Applies keys in order and collects every effect.
func press(_ state: inout DashboardState, _ keys: Key...) -> [DashboardEffect] {
    keys.flatMap { state.apply(.key($0)) }
}

/// The weight commands among effects.
func weightCommands(_ effects: [DashboardEffect]) -> [(WeightTarget, Double)] {
    effects.compactMap {
        if case let .command(c) = $0, case let .setWeight(t, v) = c.action { return (t, v) }
        return nil
    }
}
