import ArgumentParser
import Foundation
import Telemetry

/// `gradflow export RUN`: converts a run file to CSV, TensorBoard event files or an SVG chart.
struct ExportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Export a recorded run to CSV, TensorBoard or an SVG loss chart.",
        discussion: """
        --csv writes one row per step with every scalar in a named column (e.g. context.local.weight) and validation columns on eval rows. --tensorboard writes an event file into DIR (tensorboard --logdir DIR). --svg draws the loss curves with weight changes marked. `-` writes the CSV or the SVG to standard output. Existing output files are not replaced unless --force is given, and every output is checked before any is written.

        Examples:
          gradflow export runs/s-baseline --csv s-baseline.csv
          gradflow export runs/s-baseline --tensorboard tb/ --svg loss.svg
          gradflow export runs/s-baseline --csv - | head
        """
    )

    @Argument(help: ArgumentHelp("A run directory or its run.jsonl file.", valueName: "run"))
    var runPath: String

    @Option(help: ArgumentHelp("Write a CSV table to this file (- for standard output).", valueName: "OUT.csv"))
    var csv: String?

    @Option(help: ArgumentHelp("Write a TensorBoard event file into this directory.", valueName: "DIR"))
    var tensorboard: String?

    @Option(help: ArgumentHelp("Write an SVG loss chart to this file (- for standard output).", valueName: "OUT.svg"))
    var svg: String?

    @Flag(help: "Replace existing output files.")
    var force = false

    func validate() throws {
        guard csv != nil || tensorboard != nil || svg != nil else {
            throw ValidationError("nothing to export: give --csv OUT.csv, --tensorboard DIR and/or --svg OUT.svg")
        }
        if csv == OutputFile.standardOutput && svg == OutputFile.standardOutput {
            throw ValidationError("--csv - and --svg -: only one export can go to standard output")
        }
        if tensorboard == OutputFile.standardOutput {
            throw ValidationError("--tensorboard takes a folder (TensorBoard reads event files from one), not -")
        }
    }

    func run() throws {
        do {
            // Every output checked first: a run exported to three files writes none of them when
            // one cannot be written.
            if let csv { try OutputFile.check(csv, force: force) }
            if let svg { try OutputFile.check(svg, force: force) }
            if let csv, let svg, csv != OutputFile.standardOutput, RunFileLocation.canonical(csv) == RunFileLocation.canonical(svg) {
                throw CLIError("--csv and --svg name the same file (\(svg)); give each its own")
            }
            if let tensorboard {
                var isDirectory: ObjCBool = false
                if FileManager.default.fileExists(atPath: tensorboard, isDirectory: &isDirectory) {
                    guard isDirectory.boolValue else {
                        throw CLIError("--tensorboard \(tensorboard): is a file; TensorBoard reads event files from a folder")
                    }
                    try OutputFile.check(try TensorBoardExporter.outputPath(run: runPath, directory: tensorboard), force: force)
                }   // else the export makes the folder
            }
            // What was written goes to standard error: standard output may be the export itself.
            if let csv {
                let rows = try CSVExporter.export(run: runPath, to: csv, force: force)
                if csv != OutputFile.standardOutput { Console.error("wrote \(csv) (\(rows) rows)\n") }
            }
            if let tensorboard {
                let file = try TensorBoardExporter.export(run: runPath, to: tensorboard, force: force)
                Console.error("wrote \(file)\n")
            }
            if let svg {
                try SVGExporter.export(run: runPath, to: svg, force: force)
                if svg != OutputFile.standardOutput { Console.error("wrote \(svg)\n") }
            }
        } catch let error as RunFileError {
            throw CLIError("\(error)")
        }
    }
}
