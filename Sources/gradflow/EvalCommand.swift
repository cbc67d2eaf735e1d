import ArgumentParser
import Evaluation
import Foundation

/// `gradflow eval`: runs a study (arms × seeds × data on one token budget), records every run as
/// an ordinary run directory, resumes where it stopped, and writes the report.
struct EvalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval",
        abstract: "Run an evaluation study and write its report (Markdown, CSV, SVG plots).",
        discussion: """
        STUDY is a key = value file whose run settings are `gradflow train`'s own flags: `train = FLAGS`
        lines for every run, `arm NAME = FLAGS` for each arm (docs/EVALUATION.md; examples in studies/).
        Every run goes to
        DIR/DATA/ARM/seed-N as an ordinary run directory (replay it with `gradflow replay DIR/DATA/ARM/seed-N`);
        runs that already completed are skipped, so an interrupted study continues where it stopped.
        The report goes to DIR/report.md, DIR/runs.csv, DIR/comparisons.csv and DIR/*.svg.
          gradflow eval --quick --out /tmp/quick   # the CI-sized study (< 1 min)
          gradflow eval studies/reduced.study --out eval/reduced
        """
    )

    @Argument(help: "The study file (omit with --quick).")
    var study: String?

    @Flag(help: "Run the built-in quick study (embedded corpus and the recall task, tiny model).")
    var quick = false

    @Option(help: "Output folder for the runs and the report.")
    var out: String

    @Flag(help: "Only write the report from the runs already in --out (train nothing).")
    var reportOnly = false

    @Option(help: "Bootstrap resamples for the confidence intervals.")
    var resamples: Int = 10_000

    func validate() throws {
        if quick == (study != nil) { throw ValidationError("give either a STUDY file or --quick (not both, not neither)") }
        if resamples < 100 { throw ValidationError("--resamples must be at least 100 (got \(resamples))") }
    }

    func run() throws {
        let config: StudyConfig
        do {
            config = quick ? try StudyConfig(text: StudyConfig.quickText, origin: "(quick study)") : try StudyConfig(path: study!)
        } catch let e as StudyConfig.ParseError {
            throw ValidationError(e.description)
        }
        let runner = StudyRunner(study: config, out: out, log: { print($0); fflush(stdout) })
        let t0 = Date()
        let metrics: [RunMetrics]
        do {
            metrics = reportOnly ? try runner.metrics() : try runner.run()
        } catch {
            throw CLIError("\(error)")
        }
        var report = StudyReport(study: config, runs: metrics)
        report.resamples = resamples
        report.failures = runner.failures()
        let command = "gradflow " + CommandLine.arguments.dropFirst().joined(separator: " ")
        let paths = try report.write(to: out, command: command)
        print(String(format: "study %@: %d runs in %.1f s; report:", config.name, metrics.count, Date().timeIntervalSince(t0)))
        if !report.failures.isEmpty { print("\(report.failures.count) run(s) failed and are left out: see the report") }
        for p in paths { print("  " + p) }
    }
}
