import Dashboard
import Foundation
import Telemetry
import Terminal

/// Decides between the dashboard and plain output, and opens the dashboard when it can.
enum DashboardLauncher {
    /// The terminal screen and the dashboard options, or nil when the run should print plain lines
    /// (`--no-tui`, output not a terminal, unknown TERM). A bad `--theme` is an error.
    static func open(_ display: DisplayOptions, runFile: String?) throws -> (NCursesScreen, DashboardOptions)? {
        // Check the theme first, so a bad one is reported even when the dashboard would not open.
        let themes: [Theme]
        do {
            themes = try ThemeLoader(bundledDirectory: bundledThemes()).catalog(selected: display.theme)
        } catch {
            throw CLIError("--theme: \(error)")
        }
        guard let style = GraphStyle(rawValue: display.graph) else {
            throw CLIError("--graph must be braille, block or ascii (got '\(display.graph)')")
        }
        let references = try loadReferences(display.compare)
        guard !display.noTui, isatty(0) == 1, isatty(1) == 1 else { return nil }
        do {
            let screen = try NCursesScreen()
            var options = DashboardOptions(themes: themes, graphStyle: style, runFile: runFile)
            options.references = references
            return (screen, options)
        } catch {
            FileHandle.standardError.write(Data("gradflow: no dashboard (\(error)); printing progress lines\n".utf8))
            return nil
        }
    }

    /// The `--compare` runs, read in full; a file that cannot be read is an error naming it.
    static func loadReferences(_ paths: [String]) throws -> [ReferenceRun] {
        guard paths.count <= ReferenceRun.maxCount else {
            throw CLIError("--compare: at most \(ReferenceRun.maxCount) reference runs (got \(paths.count))")
        }
        return try paths.map { path in
            do { return try ReferenceRun.load(path: path) } catch { throw CLIError("--compare: \(error)") }
        }
    }

    /// The repository's themes/ folder when the executable runs from a build inside it.
    static func bundledThemes() -> URL? {
        var dir = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
        for _ in 0..<5 {
            let candidate = dir.appendingPathComponent("themes")
            if FileManager.default.fileExists(atPath: candidate.appendingPathComponent("default.theme").path) { return candidate }
            dir.deleteLastPathComponent()
        }
        return nil
    }
}
