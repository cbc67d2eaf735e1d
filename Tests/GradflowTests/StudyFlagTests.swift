import Foundation
import Testing
import Evaluation
import RunFlags
import Training
@testable import gradflow

/// A study file speaks `gradflow train`'s dialect: every flag that `train` declares either passes
/// through a study file into the run's recipe exactly as `train` would read it, or is refused with
/// a reason. The flags come from the argument parser's own definition of `train`, so a flag added
/// to `train` fails here until it has a sample value below or a reason in
/// `StudyConfig.refusedFlags`.
@Suite struct StudyFlagTests {
    /// A value (and any flag it needs) for each `train` flag a study takes.
    static let samples: [String: [String]] = [
        "--preset": ["M"], "--layers": ["2"], "--heads": ["2"], "--dim": ["32"], "--context": ["64"], "--batch": ["4"],
        "--steps": ["30"], "--lr": ["1e-3"], "--warmup": ["5"], "--seed": ["7"], "--data-seed": ["9"], "--threads": ["2"],
        "--eval-data": ["far=far.txt"], "--eval-every": ["10"], "--eval-windows": ["4"], "--checkpoint-every": ["50"],
        "--context-bands": ["8,32"], "--context-weights": ["1,1,2"], "--time-weights": ["0.5,1,2"],
        "--time-betas": ["0.8,0.95", "--adaptive", "time"], "--depth-groups": ["2"], "--depth-weights": ["1,1,2"],
        "--adaptive": ["all"], "--grokfast": ["0.98,2"], "--time-lambda": ["0.5", "--adaptive", "time"],
        "--policy-warmup": ["20", "--adaptive", "context"],
        "--twin-steps": ["12"], "--twin-at": ["5", "--twin-steps", "12"], "--change": ["10:context.long=2"], "--schedule": ["changes.txt"],
        "--on-divergence": ["off"], "--on-repeated-divergence": ["stop"], "--lr-backoff": ["0.25"],
        "--snapshot-every": ["20"], "--outlier-mads": ["8"],
    ]

    /// Every flag of `gradflow train` (its preferred long name), read from the parser's definition.
    static func trainFlags() throws -> [String] {
        let json = try #require(try JSONSerialization.jsonObject(with: Data(TrainCommand._dumpHelp().utf8)) as? [String: Any])
        let command = try #require(json["command"] as? [String: Any])
        let arguments = try #require(command["arguments"] as? [[String: Any]])
        return arguments.compactMap { a in
            guard a["kind"] as? String != "positional", let name = a["preferredName"] as? [String: Any],
                  name["kind"] as? String == "long", let long = name["name"] as? String else { return nil }
            return "--" + long
        }.filter { $0 != "--help" && $0 != "--version" }   // the parser's own
    }

    static let base = "name = flags\ndata text = embedded\narm baseline =\n"

    @Test func everyTrainFlagIsTakenOrRefusedWithAReason() throws {
        let flags = try Self.trainFlags()
        #expect(flags.count >= 40, "the parser's definition lists train's flags: \(flags)")
        for flag in flags {
            let known = Self.samples[flag] != nil || StudyConfig.refusedFlags[flag] != nil
            #expect(known, "\(flag) is a flag of gradflow train: give it a sample value here (a study takes it) or a reason in StudyConfig.refusedFlags")
        }
        for flag in Set(Self.samples.keys).union(StudyConfig.refusedFlags.keys) {
            #expect(flags.contains(flag), "\(flag) is not a flag of gradflow train (any more)")
        }
    }

    @Test func aFlagOnATrainLineMakesTheRecipeThatTrainMakes() throws {
        let plain = try StudyConfig(text: Self.base, origin: "plain").runs[0].recipe
        for (flag, value) in Self.samples.sorted(by: { $0.key < $1.key }) {
            let study = try StudyConfig(text: Self.base + "train = \(flag) \(value.joined(separator: " "))", origin: flag)
            let got = study.runs[0].recipe
            let train = try TrainCommand.parse(StudyConfig.defaultFlags + ["--seed", "1", "--data-seed", "1", flag] + value)
            #expect(got == train.options.recipe(), "\(flag)")
            #expect(got != plain, "\(flag) changed nothing")
            if !StudyConfig.sharedFlags.contains(flag) {
                let inArm = try StudyConfig(text: Self.base.replacingOccurrences(of: "arm baseline =", with: "arm baseline = \(flag) \(value.joined(separator: " "))"), origin: flag)
                #expect(inArm.runs[0].recipe == got, "\(flag) in an arm")
            }
        }
    }

    @Test func refusedFlagsSayWhy() throws {
        for (flag, reason) in StudyConfig.refusedFlags {
            for text in [Self.base + "train = \(flag) x", Self.base.replacingOccurrences(of: "arm baseline =", with: "arm baseline = \(flag) x")] {
                do {
                    _ = try StudyConfig(text: text, origin: "f.study")
                    Issue.record("\(flag) was taken")
                } catch {
                    #expect("\(error)".contains("\(flag) is not a study setting: \(reason)"), "\(error)")
                }
            }
        }
        for flag in StudyConfig.sharedFlags {
            let text = Self.base.replacingOccurrences(of: "arm baseline =", with: "arm baseline = \(flag) \(Self.samples[flag]![0])")
            #expect(throws: (any Error).self, "\(flag) in an arm") { _ = try StudyConfig(text: text, origin: "f.study") }
        }
    }

    /// The study's seed is each run's --seed and --data-seed; an arm's own replaces that one.
    @Test func theStudySeedAndAnArmsFixedSeed() throws {
        let s = try StudyConfig(text: "seeds = 4,5\ndata t = embedded\narm baseline =\narm data-only = --seed 1\narm init-only = --data-seed 2", origin: "s")
        let seeds = s.runs.map { ($0.arm.name, $0.recipe.seed, $0.recipe.dataSeed) }
        #expect(seeds.map(\.0) == ["baseline", "data-only", "init-only", "baseline", "data-only", "init-only"])
        #expect(seeds.map(\.1) == [4, 1, 4, 5, 1, 5])
        #expect(seeds.map(\.2) == [4, 4, 2, 5, 5, 2])
    }
}
