import ArgumentParser
import Foundation
import Telemetry

/// `gradflow export RUN`: converts a run file to CSV, TensorBoard event files or an SVG chart.
struct ExportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Export a recorded run to CSV, TensorBoard or an SVG loss chart.",
        discussion: """
        --csv writes one row per step with every scalar in a named column (e.g. context.local.weight) and validation columns on eval rows. --tensorboard writes an event file into DIR (tensorboard --logdir DIR). --svg draws the loss curves with weight changes marked. Existing output files are not replaced unless --force is given.

        Examples:
          gradflow export runs/s-baseline --csv s-baseline.csv
          gradflow export runs/s-baseline --tensorboard tb/ --svg loss.svg
        """
    )

    @Argument(help: ArgumentHelp("A run directory or its run.jsonl file.", valueName: "run"))
    var runPath: String

    @Option(help: ArgumentHelp("Write a CSV table to this file.", valueName: "OUT.csv"))
    var csv: String?

    @Option(help: ArgumentHelp("Write a TensorBoard event file into this directory.", valueName: "DIR"))
    var tensorboard: String?

    @Option(help: ArgumentHelp("Write an SVG loss chart to this file.", valueName: "OUT.svg"))
    var svg: String?

    @Flag(help: "Replace existing output files.")
    var force = false

    func validate() throws {
        guard csv != nil || tensorboard != nil || svg != nil else {
            throw ValidationError("nothing to export: give --csv OUT.csv, --tensorboard DIR and/or --svg OUT.svg")
        }
    }

    func run() throws {
        do {
            if let csv {
                let rows = try CSVExporter.export(run: runPath, to: csv, force: force)
                print("wrote \(csv) (\(rows) rows)")
            }
            if let tensorboard {
                let file = try TensorBoardExporter.export(run: runPath, to: tensorboard, force: force)
                print("wrote \(file)")
            }
            if let svg {
                try SVGExporter.export(run: runPath, to: svg, force: force)
                print("wrote \(svg)")
            }
        } catch let error as RunFileError {
            throw CLIError("\(error)")
        }
    }
}
