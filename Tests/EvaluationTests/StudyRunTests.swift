import Foundation
import Telemetry
import Testing
import Training
@testable import Evaluation

/// Runs a very small study through the same code path as `gradflow eval` into a temporary folder.
@Suite struct StudyRunTests {
    static let text = """
    name = tiny
    train = --layers 2 --heads 2 --dim 16 --context 32 --batch 2 --steps 24 --lr 3e-3
    train = --threads 2   # as TrainingTests: the worker count is process-wide and tests run concurrently
    seeds = 1,2,3
    train = --eval-every 8 --eval-windows 4
    synthetic_windows = 16
    data text = embedded
    data recall = synthetic:recall
    arm baseline =
    arm time-adaptive = --adaptive time
    arm baseline-hot = --lr 1e-2
    arm time-hot = --lr 1e-2 --adaptive time
    arms.recall = baseline, time-adaptive
    """

    @Test func studyRunsResumesAndReports() throws {
        let out = NSTemporaryDirectory() + "gradflow-eval-" + UUID().uuidString
        defer { try? FileManager.default.removeItem(atPath: out) }
        // A far domain for the fine-tune, unlike the plays: short log lines.
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        let far = out + "/far.txt"
        let farText = (0..<600).map { "error \($0 % 7): disk \($0 % 3) is full\n" }.joined()
        try farText.write(toFile: far, atomically: true, encoding: .utf8)
        let study = try StudyConfig(text: Self.text + "\nfinetune far = \(far) steps=12 lr=1e-2", origin: "tiny")
        var lines: [String] = []
        let runner = StudyRunner(study: study, out: out, log: { lines.append($0) })
        let metrics = try runner.run()
        #expect(metrics.count == 3 * 6)
        #expect(lines.filter { $0.contains("done in") }.count == 18)
        for m in metrics {
            #expect(m.finalValidation.isFinite && m.finalValidation > 0)
            #expect(m.validationCurve.map(\.step) == [8, 16, 24])
            #expect(m.tokensPerSecond > 0)
            #expect(m.flipRate.isFinite && m.gradNormCV.isFinite)
            #expect(m.extras != nil)
            if m.data == "text" {
                // Fine-tuning on the far domain lowers its held-out loss.
                let ft = try #require(m.fineTunes["far"])
                #expect(ft.before.isFinite && ft.after.isFinite && ft.after < ft.before, "\(m.arm) seed \(m.seed): \(ft)")
            } else {
                #expect(m.fineTunes.isEmpty)
            }
        }
        let fineTune = try RunFileReader(path: out + "/text/time-adaptive/seed-1/finetune-far")
        #expect(fineTune.header.runName == "text/time-adaptive/seed-1/finetune-far")
        #expect(fineTune.header.totalSteps == 12)
        // The recall runs score answers per band (T 32: local 0–8, long 9–31).
        let recall = try #require(metrics.first { $0.data == "recall" }?.extras?.synthetic)
        #expect(recall.map(\.band) == ["local", "long"])
        #expect(recall.allSatisfy { $0.answers > 0 && $0.loss.isFinite && (0...1).contains($0.accuracy) })
        // They also score the bands at every validation pass, which gives the emergence step.
        for m in metrics where m.data == "recall" {
            let curve = try #require(m.extras?.syntheticCurve)
            #expect(curve.map(\.step) == m.validationCurve.map(\.step))
            #expect(curve.allSatisfy { $0.bands.map(\.band) == ["local", "long"] && $0.bands.allSatisfy { $0.answers > 0 } })
            #expect(m.emergenceStep(band: "long", accuracy: 0) == 8)
            #expect(m.emergenceStep(band: "long", accuracy: 1.01) == nil)
        }
        #expect(metrics.filter { $0.data == "text" }.allSatisfy { $0.extras?.syntheticCurve == nil })

        // Each run is an ordinary run directory whose file ends with a completed end record.
        let dir = out + "/recall/time-adaptive/seed-2"
        #expect(StudyRunner.isComplete(dir))
        let reader = try RunFileReader(path: dir)
        #expect(reader.header.runName == "recall/time-adaptive/seed-2")

        // Resume: a second pass trains nothing; an interrupted run is moved aside and redone.
        try FileManager.default.removeItem(atPath: out + "/text/baseline/seed-3/summary.json")
        lines = []
        let again = StudyRunner(study: study, out: out, log: { lines.append($0) })
        let metrics2 = try again.run()
        #expect(lines.filter { $0.contains("skipped") }.count == 17)
        #expect(lines.filter { $0.contains("done in") }.count == 1)
        #expect(FileManager.default.fileExists(atPath: RunFileLocation.file(in: out + "/text/baseline/seed-3.incomplete-1")))
        // Same seed, same threads: the redone run reproduces its losses exactly.
        let before = metrics.first { $0.data == "text" && $0.arm == "baseline" && $0.seed == 3 }!
        let after = metrics2.first { $0.data == "text" && $0.arm == "baseline" && $0.seed == 3 }!
        #expect(before.validationCurve.map(\.loss) == after.validationCurve.map(\.loss))

        // The report.
        let report = StudyReport(study: study, runs: metrics2)
        let paths = try report.write(to: out, command: "test")
        for name in ["report.md", "runs.csv", "comparisons.csv", "text-val.svg", "text-train.svg", "recall-val.svg"] {
            #expect(paths.contains(out + "/" + name))
        }
        let md = try String(contentsOfFile: out + "/report.md", encoding: .utf8)
        #expect(md.contains("| time-adaptive | final val bpb | lower |"))
        #expect(md.contains("Learning-rate sensitivity"))
        // The learning-rate groups: time-hot against the baseline at 1e-2, and each group at its best rate.
        #expect(md.contains("| time-hot | 0.0100 | baseline-hot |"))
        #expect(md.contains("At each group's best learning rate of the grid"))
        #expect(md.contains("Loss by position at the final eval") && md.contains("| first − last shown |"))
        #expect(md.contains("| time-adaptive, time-hot | "))
        #expect(md.contains("acc long"))
        #expect(md.contains("| time-adaptive | emergence step (long accuracy ≥ 50 %) | lower |"))
        // The glance decides "learned sooner" on the emergence step (recall has no hot arms: empty cells).
        #expect(md.contains("| long range learned sooner | emergence step (long accuracy ≥ 50 %) | recall | "))
        #expect(md.contains("Band `long` at each validation pass") && md.contains("| step 8 | step 16 | step 24 | emergence step per seed |"))
        #expect(md.contains("| time-adaptive | far held-out bpb after fine-tune | lower |"))
        let csv = try String(contentsOfFile: out + "/runs.csv", encoding: .utf8).split(separator: "\n")
        #expect(csv.count == 19)
        let header = csv[0].split(separator: ",", omittingEmptySubsequences: false)
        let bpb = try #require(header.firstIndex(of: "final_val_bpb"))
        #expect(header.contains("finetune_far_loss_before") && header.contains("finetune_far_loss_after"))
        for row in csv.dropFirst() {
            let v = Double(row.split(separator: ",", omittingEmptySubsequences: false)[bpb]) ?? .nan
            #expect(v.isFinite && v > 0)
        }
        let comparisons = try String(contentsOfFile: out + "/comparisons.csv", encoding: .utf8)
        #expect(comparisons.contains("text,time-adaptive,final val bpb,lower,"))
        let svg = try String(contentsOfFile: out + "/text-val.svg", encoding: .utf8)
        #expect(svg.hasPrefix("<svg") && svg.contains("<polyline") && svg.contains("time-adaptive"))
    }

    @Test func svgChartDrawsEverySeries() {
        let chart = SVGLineChart(title: "t", xLabel: "x", yLabel: "y", series: [
            .init(name: "a<b", points: [(0, 1), (1, 2)]), .init(name: "c", points: [(0, 2), (1, .nan), (2, 0)]),
        ])
        let svg = chart.render()
        #expect(svg.components(separatedBy: "<polyline").count == 3)
        #expect(svg.contains("a&lt;b"))
        let ticks = Ticks.values(0, 1, count: 5)
        #expect(ticks.count == 6 && ticks.first == 0 && abs(ticks.last! - 1) < 1e-12)
    }
}

@Suite struct SpreadTests {
    @Test func excerptsAreEvenlySpacedOverTheWholeDomain() throws {
        let all = (0..<1000).map { UInt8($0 % 251) }
        let b = try #require(StudyRunner.spread(ByteView(all), windows: 5, T: 10))
        #expect(b.count == 51)
        // Excerpt w starts at w × (1000 − 11) / 4.
        for w in 0..<5 {
            let off = w * 989 / 4
            #expect(Array(b[(w * 10)..<(w * 10 + 10)]) == Array(all[off..<(off + 10)]))
        }
        #expect(b.last == all[989 + 10])
        #expect(StudyRunner.spread(ByteView(all), windows: 200, T: 10) == nil)
    }
}

/// A study run that fails (diverges) is an outcome of the study, not the end of it.
@Suite struct FailedRunTests {
    @Test func aFailedRunIsKeptListedAndLeftOut() throws {
        let out = NSTemporaryDirectory() + "gradflow-eval-" + UUID().uuidString
        defer { try? FileManager.default.removeItem(atPath: out) }
        let study = try StudyConfig(text: """
            name = failing
            train = --layers 1 --heads 2 --dim 16 --context 32 --batch 2
            train = --steps 12 --lr 1e-3 --threads 1 --eval-every 6 --eval-windows 2
            seeds = 1,2
            data text = embedded
            arm baseline =
            arm hot = --lr 1e-2
            """, origin: "failing")
        var lines: [String] = []
        let runner = StudyRunner(study: study, out: out, log: { lines.append($0) })
        #expect(try runner.run().count == 4 && runner.failures().isEmpty)
        // Make hot/seed-2 a run that diverged: its end record says failed, it has no summary.
        let dir = out + "/text/hot/seed-2"
        let file = RunFileLocation.file(in: dir)
        let text = try String(contentsOfFile: file, encoding: .utf8)
        try text.replacingOccurrences(of: "\"reason\":\"completed\"", with: "\"reason\":\"failed\"")
            .replacingOccurrences(of: "\"message\":\"\"", with: "\"message\":\"diverged at step 9\"")
            .write(toFile: file, atomically: true, encoding: .utf8)
        try FileManager.default.removeItem(atPath: dir + "/summary.json")
        #expect(StudyRunner.failure(dir)?.message == "diverged at step 9" && !StudyRunner.isComplete(dir))
        // A failed run is an outcome: resuming keeps it instead of training it again, and the
        // statistics hold the completed runs only.
        lines = []
        let metrics = try runner.run()
        #expect(lines.filter { $0.contains("failed earlier (diverged at step 9), kept") }.count == 1)
        #expect(!lines.contains { $0.contains("done in") })
        #expect(metrics.count == 3 && !metrics.contains { $0.arm == "hot" && $0.seed == 2 })
        #expect(runner.failures() == ["text/hot/seed-2: diverged at step 9"])
        var report = StudyReport(study: study, runs: metrics)
        report.failures = runner.failures()
        #expect(report.markdown(command: "x").contains("Runs that failed"))
        #expect(report.markdown(command: "x").contains("- `text/hot/seed-2: diverged at step 9`"))
        #expect(!StudyReport(study: study, runs: metrics).markdown(command: "x").contains("Runs that failed"))
        // A run that failed for another reason (the machine's, not training's) is not an outcome:
        // a resume moves it aside and trains it again.
        let other = out + "/text/hot/seed-1"
        let otherFile = RunFileLocation.file(in: other)
        try String(contentsOfFile: otherFile, encoding: .utf8)
            .replacingOccurrences(of: "\"reason\":\"completed\"", with: "\"reason\":\"failed\"")
            .replacingOccurrences(of: "\"message\":\"\"", with: "\"message\":\"cannot write checkpoint: disk full\"")
            .write(toFile: otherFile, atomically: true, encoding: .utf8)
        try FileManager.default.removeItem(atPath: other + "/summary.json")
        #expect(StudyRunner.failure(other) == nil)
        lines = []
        #expect(try runner.run().count == 3)   // the two baselines and hot/seed-1, trained again
        #expect(lines.contains { $0.contains("text/hot/seed-1: incomplete run moved to") })
        #expect(runner.failures() == ["text/hot/seed-2: diverged at step 9"])
    }
}
