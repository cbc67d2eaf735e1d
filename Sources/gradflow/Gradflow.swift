import ArgumentParser
import BuildInfo

/// The `gradflow` command: train, watch, record, replay and evaluate small byte-level GPTs.
@main
struct Gradflow: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gradflow",
        abstract: "Train small byte-level transformer LMs on the CPU with multi-scale gradient refinement, and watch them live.",
        discussion: """
        Start with `gradflow train`: it trains preset S on the embedded Shakespeare corpus and opens the \
        dashboard when the terminal allows (plain progress lines otherwise). Every run is recorded to \
        RUNDIR/run.jsonl and can be replayed with `gradflow replay RUNDIR`.
        """,
        version: versionLine,
        subcommands: [TrainCommand.self, AttachCommand.self, ReplayCommand.self, SampleCommand.self, RunsCommand.self, ExportCommand.self, BenchCommand.self, EvalCommand.self],
        defaultSubcommand: nil
    )

    /// The release number; `--version` adds the commit the binary was built from when known.
    static let version = "0.1.0"

    /// What `gradflow --version` prints: "0.1.0 (commit 9871ab9c1f2e)", or "0.1.0" when the build did
    /// not know its commit (a source tarball without .git and no $GRADFLOW_COMMIT; see `Build`).
    static var versionLine: String {
        Build.commit.map { "\(version) (commit \($0))" } ?? version
    }
}
