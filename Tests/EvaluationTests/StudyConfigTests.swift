import Foundation
import Testing
@testable import Evaluation

@Suite struct StudyConfigTests {
    @Test func quickStudyParses() throws {
        let s = try StudyConfig(text: StudyConfig.quickText, origin: "quick")
        #expect(s.name == "quick")
        #expect(s.arms.map(\.name) == ["baseline", "all-adaptive", "grokfast"])
        #expect(s.data.map(\.name) == ["text", "recall"])
        #expect(s.arms(for: s.data[1]).map(\.name) == ["baseline", "all-adaptive"])
        // Seed-major order: both data sets of seed 1 first.
        #expect(s.runs.count == 2 * (3 + 2))
        #expect(s.runs.prefix(5).allSatisfy { $0.seed == 1 })
        #expect(s.runs[0].directory(in: "/x") == "/x/text/baseline/seed-1")
    }

    @Test func armFlagsAndOptions() throws {
        let text = """
        # comment
        train = --steps 10   # trailing comment
        seeds = 4,5
        data small = some/file.txt limit=1000
        arm baseline =
        arm hot = --lr 3e-3 --adaptive all --data-seed 9 --time-lambda 0.5
        data text = plays
        finetune far = far.txt steps=50 lr=2e-4
        """
        let s = try StudyConfig(text: text, origin: "t")
        #expect(s.recipe.steps == 10 && s.seeds == [4, 5])
        #expect(s.data[0].limit == 1000)
        let hot = s.arms[1]
        #expect(hot.learningRate == 3e-3 && hot.recipe.refinement.adaptive == "all" && hot.recipe.dataSeed == 9)
        let run = RunSpec(data: s.data[0], arm: hot, seedIndex: 0, seed: 4)
        #expect(run.recipe.seed == 4 && run.recipe.dataSeed == 9 && run.recipe.steps == 10)
        #expect(!s.arms[0].differsOnlyInRate(from: hot))
        #expect(hot.recipe.refinement.timeLambda == "0.5")
        #expect(s.fineTune == StudyConfig.FineTune(name: "far", path: "far.txt", steps: 50, learningRate: 2e-4))
        #expect(s.fineTune?.directory(in: "out/text/hot/seed-4") == "out/text/hot/seed-4/finetune-far")
        #expect(!s.fineTunes(s.data[0]) && s.fineTunes(s.data[1]), "only full text data sets are fine-tuned")
    }

    /// Every study file in studies/ parses: each one speaks `gradflow train`'s flags.
    @Test func shippedStudiesParse() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        var parsed: [String] = []
        for folder in ["studies", "studies/pilots"] {
            let dir = root.appendingPathComponent(folder).path
            for file in try FileManager.default.contentsOfDirectory(atPath: dir).sorted() where file.hasSuffix(".study") {
                let study = try StudyConfig(path: dir + "/" + file)
                #expect(!study.runs.isEmpty, "\(file)")
                parsed.append(file)
            }
        }
        #expect(parsed.count >= 19, "\(parsed)")
    }

    @Test func divergencePolicyIsAStudySetting() throws {
        #expect(try StudyConfig(text: "data t = x\narm baseline =", origin: "f").recipe.divergence.policy == .rollback)
        let off = try StudyConfig(text: "data t = x\narm baseline =\ntrain = --on-divergence off", origin: "f")
        #expect(off.recipe.divergence.policy == .off && off.runs[0].recipe.divergence.policy == .off)
    }

    @Test func errorsNameTheLine() {
        func message(_ text: String) -> String {
            do { _ = try StudyConfig(text: text, origin: "f.study"); return "" } catch { return "\(error)" }
        }
        #expect(message("data t = x\narm baseline =\ntrain = --steps many").hasPrefix("f.study:3: train: "))
        #expect(message("data t = x\narm baseline =\ntrain = --steps many").contains("--steps"))
        #expect(message("data t = x\narm baseline =\nlayers = 2").hasPrefix("f.study:3: 'layers' is gradflow train's flag now: write 'train = --layers 2'"))
        #expect(message("data t = x\narm baseline =\neval far = f.txt").contains("write 'train = --eval-data far=f.txt'"))
        #expect(message("data t = x\narm baseline = --init-seed 1").contains("f.study:2: arm baseline: --init-seed is gradflow train's --seed now"))
        #expect(message("data t = x\narm baseline = --steps 9").contains("--steps is the same for every arm"))
        #expect(message("data t = x\narm baseline =\nprimary = far").contains("primary = far names no --eval-data domain"))
        #expect(message("data t = x\narm baseline = --adaptive sideways").contains("f.study:2: arm baseline"))
        #expect(message("data t = x\narm other =").contains("baseline arm 'baseline' is not defined"))
        #expect(message("data t = x\narm baseline = --frobnicate 1").contains("f.study:2: arm baseline: Unknown option '--frobnicate'"))
        #expect(message("wat = 1").contains("f.study:1: unknown key 'wat'"))
        #expect(message("data t = x\narm baseline =\nfinetune far = f.txt").contains("f.study:3: finetune far needs steps=N"))
        #expect(message("data t = x\narm baseline =\nfinetune far = f.txt steps=0").contains("f.study:3: finetune option 'steps=0'"))
        #expect(message("data t = x\narm baseline =\nfinetune far = f.txt steps=9 lr=-1").contains("expected steps=N (N ≥ 1) or lr=X (X > 0)"))
        #expect(message("data t = x\narm baseline =\ntrain = --on-divergence sometimes").hasPrefix("f.study:3: train: --on-divergence must be one of rollback, skip, stop, off (got 'sometimes')"))
    }
}
