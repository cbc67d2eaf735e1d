import Model
import Testing
@testable import Training

/// `--resume` and `--fork` take their settings from the checkpoint: a flag that would change one
/// is named, a flag that repeats the checkpoint's value is not.
@Suite struct CheckpointSettingsTests {
    /// The checkpoint's settings: a custom tiny model, 20 steps at 1 thread.
    static let checkpoint: TrainingConfig = {
        var r = RunRecipe()
        r.layers = 1; r.heads = 2; r.dim = 16; r.context = 32; r.batch = 2; r.steps = 20; r.threads = 1
        return try! r.trainingConfig()
    }()

    @Test func theRunsOwnCommandLineWithResumeAddedIsAccepted() {
        var r = RunRecipe()
        r.layers = 1; r.heads = 2; r.dim = 16; r.context = 32; r.batch = 2; r.steps = 20; r.threads = 1
        #expect(r.settingsDiffering(from: Self.checkpoint).isEmpty)
        #expect(RunRecipe().settingsDiffering(from: Self.checkpoint).isEmpty, "no flags: nothing to refuse")
        var lower = RunRecipe()
        lower.preset = "s"   // the default preset in another case is no flag either
        #expect(lower.settingsDiffering(from: Self.checkpoint).isEmpty)
    }

    @Test func aFlagThatWouldChangeASettingIsNamedWithTheCheckpointsValue() {
        var r = RunRecipe()
        r.steps = 5000; r.learningRate = 0.01; r.threads = 3; r.seed = 9; r.dataSeed = 4; r.warmup = 3; r.evalEvery = 7
        r.checkpointEvery = 11; r.evalWindows = 5; r.batch = 4
        let differing = r.settingsDiffering(from: Self.checkpoint)
        #expect(differing == ["--batch 4 (the checkpoint's: 2)", "--steps 5000 (the checkpoint's: 20)",
                              "--lr 0.01 (the checkpoint's: 0.003)", "--warmup 3 (the checkpoint's: 2)",
                              "--seed 9 (the checkpoint's: 1)", "--data-seed 4 (the checkpoint's: 1)",
                              "--threads 3 (the checkpoint's: 1)", "--eval-every 7 (the checkpoint's: 200)",
                              "--eval-windows 5 (the checkpoint's: 64)", "--checkpoint-every 11 (the checkpoint's: 1000)"],
                "\(differing)")
        var shape = RunRecipe()
        shape.dim = 32
        #expect(shape.settingsDiffering(from: Self.checkpoint)
                == ["--dim 32 (the checkpoint's model: custom, --layers 1 --heads 2 --dim 16 --context 32)"])
    }
}
