import ArgumentParser

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
        subcommands: [TrainCommand.self, ReplayCommand.self, SampleCommand.self, RunsCommand.self, ExportCommand.self, BenchCommand.self, EvalCommand.self],
        defaultSubcommand: nil
    )
}
