import ArgumentParser
import BuildInfo
import DataParallel
import Foundation
import Telemetry

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
        subcommands: [TrainCommand.self, AttachCommand.self, ReplayCommand.self, SampleCommand.self, RunsCommand.self, ExportCommand.self, BenchCommand.self, EvalCommand.self, GuardEvalCommand.self],
        defaultSubcommand: nil
    )

    /// Parses and runs the command. A flag problem found while the command runs (the data, a
    /// checkpoint, --resume's settings) is reported as one found while parsing, with exit status
    /// 64, but pointing to that command's help instead of printing the root's usage line.
    static func main() {
        var command: ParsableCommand
        let words = joiningNegativeValues(Array(CommandLine.arguments.dropFirst()))
        do { command = try parseAsRoot(words) } catch {
            // Under mpirun every rank parses the same words: rank 0 alone says what is wrong,
            // instead of each rank's text spliced into the others'. The others wait a moment
            // first: mpirun ends the job at the first non-zero exit, which would cut rank 0's text.
            if let rank = MPICollective.rankFromEnvironment, rank != 0 {
                let code = exitCode(for: error).rawValue
                if code != 0 { Thread.sleep(forTimeInterval: 2) }
                Foundation.exit(code)
            }
            exit(withError: error)
        }
        do {
            try command.run()
        } catch let problem as ValidationError {
            Console.error(flagProblem(problem.message, command: type(of: command)))
            Foundation.exit(ExitCode.validationFailure.rawValue)
        } catch {
            exit(withError: error)
        }
    }

    /// `--lr -0.1` as `--lr=-0.1`: the argument parser takes a word that starts with "-" for an
    /// option and says the value is missing, so a negative number after a long option is joined
    /// to it (the option then checks its own range). Nothing after `--` is touched.
    static func joiningNegativeValues(_ words: [String]) -> [String] {
        var out: [String] = []
        var i = 0
        while i < words.count {
            let word = words[i]
            if word == "--" { return out + words[i...] }
            if word.hasPrefix("--"), !word.contains("="), i + 1 < words.count,
               words[i + 1].hasPrefix("-"), Double(words[i + 1]) != nil {
                out.append(word + "=" + words[i + 1])
                i += 2
            } else {
                out.append(word)
                i += 1
            }
        }
        return out
    }

    /// How a flag problem found while `command` runs is reported (exit status 64), in the
    /// argument parser's own words for one found while parsing.
    static func flagProblem(_ message: String, command: ParsableCommand.Type) -> String {
        "Error: \(message)\n  See '\(path(of: command)) --help' for more information.\n"
    }

    /// "gradflow bench steps": the words that name `command` on the command line.
    static func path(of command: ParsableCommand.Type, under root: ParsableCommand.Type = Gradflow.self) -> String {
        func find(_ node: ParsableCommand.Type, _ words: [String]) -> [String]? {
            let here = words + [node.configuration.commandName ?? "gradflow"]
            if node == command { return here }
            for child in node.configuration.subcommands { if let found = find(child, here) { return found } }
            return nil
        }
        return (find(root, []) ?? ["gradflow"]).joined(separator: " ")
    }

    /// The release number; `--version` adds the commit the binary was built from when known.
    static let version = "0.1.0"

    /// What `gradflow --version` prints: "0.1.0 (commit 9871ab9c1f2e)", or "0.1.0" when the build did
    /// not know its commit (a source tarball without .git and no $GRADFLOW_COMMIT; see `Build`).
    static var versionLine: String {
        Build.commit.map { "\(version) (commit \($0))" } ?? version
    }
}
