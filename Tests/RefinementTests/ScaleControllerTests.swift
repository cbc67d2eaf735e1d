import Testing
import Refinement

@Suite("Scale controller")
struct ScaleControllerTests {
    private func controller(_ flags: RefinementFlags, warmup: Int = 3) throws -> ScaleController {
        let setup = try RefinementConfig(flags: flags).resolve(window: 128, layers: 3)
        var context = ContextPolicy.Parameters()
        context.schedule = WarmupRamp(warmupSteps: warmup, rampSteps: 0)
        var depth = DepthPolicy.Parameters()
        depth.schedule = WarmupRamp(warmupSteps: warmup, rampSteps: 0)
        return ScaleController(setup: setup, totalSteps: 100, contextParameters: context, depthParameters: depth)
    }

    @Test("only adaptive axes adopt their policy's weights, after warm-up")
    func adoptsOnAdaptiveAxes() throws {
        var scales = try controller(RefinementFlags(timeWeights: "0.5,1,2", adaptive: "context,depth"))
        let energy = [[0.7, 0.25, 0.05], [0.5, 0.3, 0.2], [0.4, 0.3, 0.3]]
        var stats = TimeBandStats()
        stats.gradientDotPreviousFast = -1
        stats.gradientSquared = 1
        stats.previousFastSquared = 1
        for step in 0..<3 {
            let changed = scales.update(step: step, contextEnergy: energy, timeStats: stats,
                                        depthUpdateNorms: [1e-3, 4e-3, 1e-3], depthParameterNorms: [1, 1, 1])
            #expect(changed.isEmpty, "warm-up at step \(step)")
        }
        #expect(scales.warmupEnds(atStep: 2))
        let changed = scales.update(step: 3, contextEnergy: energy, timeStats: stats,
                                    depthUpdateNorms: [1e-3, 4e-3, 1e-3], depthParameterNorms: [1, 1, 1])
        #expect(changed == [.context, .depth])
        #expect(scales.weights.time == TimeWeights(high: 0.5, mid: 1, low: 2), "the manual time axis is untouched")
        #expect(scales.time.meanCosine == -1, "but its policy keeps measuring")
        #expect(scales.weights.context[0][2] > 1)
        #expect(scales.weights.depth[1] < 1 && scales.weights.depth[0] > 1)
    }

    @Test("commands: a manual weight, back to adaptive, freeze as manual, targets")
    func commands() throws {
        var scales = try controller(RefinementFlags(adaptive: "all"))
        #expect(scales.weights.mode(.time) == .adaptive)
        let old = try scales.setWeight(.time, band: 0, to: 0.5).get()
        #expect(old == 1)
        #expect(scales.weights.mode(.time) == .manual)
        #expect(scales.setAdaptive(.time, true) == .manual)
        #expect(scales.weights.time.high == 0.5, "0.5 is inside the adaptive range, so it stays until the next update")
        _ = scales.setWeight(.depth, band: 2, to: 5)
        #expect(scales.setAdaptive(.depth, true) == .manual)
        #expect(scales.weights.depth[2] == 2, "clamped into the adaptive range")
        #expect(scales.setAdaptive(.depth, false) == .adaptive)
        #expect(scales.weights.depth == [1, 1, 2], "manual keeps the current weights")
        let share = try scales.setTarget(band: 2, share: 0.4).get()
        #expect(abs(share - 1.0 / 3) < 1e-12, "equal shares before anything was measured")
        #expect(abs((scales.context.targets?[2] ?? 0) - 0.4) < 1e-12)
        if case .success = scales.setWeight(.context, band: 0, to: 100) { Issue.record("100 accepted") }
    }
}
