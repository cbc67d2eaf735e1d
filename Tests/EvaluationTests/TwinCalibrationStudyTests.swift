import Foundation
import Testing
@testable import Evaluation

/// A calibration study: an arm with a scripted change and a twin window beside the baseline; the
/// runs record the verdict, and the report sets it beside the final paired Δ validation.
@Suite struct TwinCalibrationStudyTests {
    static let text = """
    name = calibration
    layers = 2
    heads = 2
    dim = 16
    context = 32
    batch = 2
    steps = 30
    threads = 2
    lr = 3e-3
    seeds = 1,2
    eval_every = 10
    eval_windows = 4
    data text = embedded
    arm baseline =
    arm depth-x2 = --change 10:depth.upper=2 --twin-steps 12
    """

    @Test func armsCarryTheChangeAndTheReportComparesVerdictsWithTheFinalDelta() throws {
        let study = try StudyConfig(text: Self.text, origin: "calibration")
        let arm = try #require(study.arms.first { $0.name == "depth-x2" })
        #expect(arm.changes == ["10:depth.upper=2"])
        #expect(arm.twinSteps == 12)
        #expect(arm.refinementKey != study.arms[0].refinementKey, "a change makes another arm")
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
