import Testing
import Kernels
@testable import Model

@Suite struct ModelGradientTests {

    @Test func presetParameterCountsMatchDesign() {
        #expect(GPTConfig.S.parameterCount == 842_496)
        #expect(GPTConfig.M.parameterCount == 10_844_160)
    }

    func tinyModel(seed: UInt64 = 7) -> GPT {
        let config = GPTConfig(layers: 2, heads: 2, channels: 16, context: 8)
        let model = GPT(config: config, batch: 2, seed: seed, parallel: testParallel)
        // Larger random parameters than the init, so every path carries a visible gradient.
        var rng = Xoshiro256(seed: 99)
        for i in 0..<model.layout.count { model.params[i] += Float(rng.normal() * 0.1) }
        for i in 0..<(2 * 8) {
            model.inputs[i] = Int32(rng.below(256))
            model.targets[i] = Int32(rng.below(256))
        }
        return model
    }

    /// For every tensor: the directional derivative along a random direction, by central
    /// differences of the Float32 loss (ε = 1e-2), against ⟨grad, direction⟩. Tolerance 2 %.
    @Test func wholeModelGradientMatchesDirectionalDerivatives() {
        let model = tinyModel()
        let full = model.config.context
        _ = model.forward(T: full)
        model.backward()
        let grads = Array(UnsafeBufferPointer(start: model.grads, count: model.layout.count))
        var rng = Xoshiro256(seed: 5)
        for t in model.layout.tensors {
            let dir = (0..<t.count).map { _ in Float(rng.normal()) }
            var analytic = 0.0
            for i in 0..<t.count { analytic += Double(grads[t.offset + i] * dir[i]) }
            let eps: Float = 1e-2
            let p = model.params + t.offset
            let saved = Array(UnsafeBufferPointer(start: p, count: t.count))
            for i in 0..<t.count { p[i] = saved[i] + eps * dir[i] }
            let up = Double(model.forward(T: full))
            for i in 0..<t.count { p[i] = saved[i] - eps * dir[i] }
            let down = Double(model.forward(T: full))
            for i in 0..<t.count { p[i] = saved[i] }
            let numeric = (up - down) / (2 * Double(eps))
            let err = abs(numeric - analytic) / max(abs(numeric) + abs(analytic), 1e-6)
            #expect(err < 0.02 || abs(numeric - analytic) < 2e-5, "\(t.name): analytic \(analytic) numeric \(numeric)")
        }
    }

    @Test func shorterWindowsAndMasksGiveFiniteGradients() {
        let model = tinyModel()
        var mask = [Float](repeating: 0, count: 2 * 5)
        mask[4] = 1
        mask[9] = 1
        let loss = mask.withUnsafeBufferPointer { model.forward(T: 5, lossMask: $0.baseAddress) }
        #expect(loss.isFinite && loss > 0)
        model.backward()
        var norm: Float = 0
        for i in 0..<model.layout.count { norm += model.grads[i] * model.grads[i] }
        #expect(norm.isFinite && norm > 0)
        // Rows T..<context of the position table get no gradient from a T = 5 pass.
        let wpe = model.grads + model.layout.wpe + 5 * model.config.channels
        #expect((0..<(3 * model.config.channels)).allSatisfy { wpe[$0] == 0 })
    }

    @Test func forwardIsDeterministic() {
        let a = tinyModel(), b = tinyModel()
        #expect(a.forward() == b.forward())
        a.backward()
        b.backward()
        #expect(Array(UnsafeBufferPointer(start: a.grads, count: a.layout.count)) ==
                Array(UnsafeBufferPointer(start: b.grads, count: b.layout.count)))
    }
}

/// The workers the tests' kernels and models use: two, which exercises the split.
let testParallel = Kernels.Parallel(threads: 2)
