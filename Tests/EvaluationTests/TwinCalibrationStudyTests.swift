import Foundation
import Testing
@testable import Evaluation

/// A calibration study: an arm with a scripted change and a twin window beside the baseline; the
/// runs record the verdict, and the report sets it beside the final paired Δ validation.
@Suite struct TwinCalibrationStudyTests {
    static let text = """
    name = calibration
    train = --layers 2 --heads 2 --dim 16 --context 32 --batch 2
    train = --steps 30 --threads 2 --lr 3e-3 --eval-every 10 --eval-windows 4
    seeds = 1,2
    data text = embedded
    arm baseline =
    arm depth-x2 = --change 10:depth.upper=2 --twin-steps 12
    """

    @Test func armsCarryTheChangeAndTheReportComparesVerdictsWithTheFinalDelta() throws {
        let study = try StudyConfig(text: Self.text, origin: "calibration")
        let arm = try #require(study.arms.first { $0.name == "depth-x2" })
        #expect(arm.recipe.changes == ["10:depth.upper=2"])
        #expect(arm.recipe.twinSteps == 12)
        #expect(!arm.differsOnlyInRate(from: study.arms[0]), "a change makes another arm")
        let out = NSTemporaryDirectory() + "gradflow-calibration-" + UUID().uuidString
        defer { try? FileManager.default.removeItem(atPath: out) }
        let metrics = try StudyRunner(study: study, out: out, log: { _ in }).run()
        #expect(metrics.count == 4)
        for m in metrics {
            if m.arm == "baseline" {
                #expect(m.verdicts.isEmpty, "no change, no twin")
            } else {
                let v = try #require(m.verdicts.first)
                #expect(v.changeStep == 10 && v.steps == 12 && !v.partial)
                #expect(v.delta.isFinite && v.delta != 0, "depth.upper ×2 changes the losses")
            }
        }
        let report = StudyReport(study: study, runs: metrics).markdown(command: "test")
        #expect(report.contains("Twin calibration"))
        #expect(report.contains("| depth-x2 | all |"), "the summary row with the sign agreement")
        #expect(report.contains("/2 |"), "two seeds compared")
    }

    /// The baseline of the same seed is the twin (same batches, same state, never changed), so the
    /// window-length row of the twin's own length repeats each recorded verdict bit for bit, and
    /// windows that end past the run are absent.
    @Test func windowLengthRowsRepeatTheVerdictAtTheTwinLengthAndStopAtTheRunsEnd() throws {
        let study = try StudyConfig(text: Self.text, origin: "calibration")
        let out = NSTemporaryDirectory() + "gradflow-windows-" + UUID().uuidString
        defer { try? FileManager.default.removeItem(atPath: out) }
        let metrics = try StudyRunner(study: study, out: out, log: { _ in }).run()
        let report = StudyReport(study: study, runs: metrics)
        let rows = report.windowRows(study.data[0], arms: study.arms)
        // Change at step 10 of 30: the twin's 12 steps and the rest of the run (20) fit; 50 … 800 do not.
        #expect(rows.map(\.length) == [12, 20])
        #expect(rows.map(\.isTwinWindow) == [true, false] && rows.map(\.isRestOfRun) == [false, true])
        let twinRow = try #require(rows.first)
        #expect(twinRow.seeds.count == 2)
        for seed in twinRow.seeds {
            let r = try #require(metrics.first { $0.arm == "depth-x2" && $0.seed == seed.seed })
            let base = try #require(metrics.first { $0.arm == "baseline" && $0.seed == seed.seed })
            let v = try #require(r.verdicts.first)
            #expect(seed.change == v.changeStep)
            #expect(seed.window.count == v.steps)
            #expect(seed.window.mean == v.delta, "seed \(seed.seed): \(seed.window.mean) vs the verdict's \(v.delta)")
            let ci = try #require(seed.window.interval)
            #expect(ci.low == v.low && ci.high == v.high)
            #expect(seed.window.word == v.word)
            #expect(seed.final == r.finalValidation - base.finalValidation)
            #expect(StudyReport.windowDifferences(r, baseline: base, change: v.changeStep, length: 21) == nil,
                    "a window past the last step is not measured")
        }
        let markdown = report.markdown(command: "test")
        #expect(markdown.contains("Window length"))
        #expect(markdown.contains("| depth-x2 | 12 (twin) | " + twinRow.seeds.map { StudyReport.g($0.window.mean) }.joined(separator: ", ") + " |"))
        #expect(markdown.contains("| depth-x2 | 20 (rest of run) |"))
        #expect(!markdown.contains("| depth-x2 | 50 "), "a window longer than the run has no row")
        let csv = report.twinWindowsCSV().split(separator: "\n")
        #expect(csv.count == 1 + 2 * 2, "a header and one line per seed and window")
        #expect(csv.dropFirst().allSatisfy { $0.hasPrefix("text,depth-x2,") })
    }

    @Test func badChangesInAStudyNameTheArm() {
        #expect(throws: (any Error).self) {
            _ = try StudyConfig(text: Self.text.replacingOccurrences(of: "10:depth.upper=2", with: "ten:depth"), origin: "c")
        }
        do {
            _ = try StudyConfig(text: Self.text.replacingOccurrences(of: "--twin-steps 12", with: "--twin-steps -1"), origin: "c")
            Issue.record("accepted a negative twin window")
        } catch {
            #expect("\(error)".contains("depth-x2") && "\(error)".contains("--twin-steps"), "\(error)")
        }
    }
}
