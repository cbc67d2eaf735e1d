import Foundation
import Testing
import Kernels
@testable import Model

@Suite struct GenerationTests {

    /// A model with larger-than-init random parameters, so that every position's logits differ.
    func model(context: Int = 16) -> GPT {
        let config = GPTConfig(layers: 2, heads: 2, channels: 16, context: context)
        let m = GPT(config: config, batch: 1, seed: 3, parallel: testParallel)
        var rng = Xoshiro256(seed: 11)
        for i in 0..<m.layout.count { m.params[i] += Float(rng.normal() * 0.1) }
        return m
    }

    /// −log softmax(logits)[target], in Double.
    func loss(_ logits: UnsafePointer<Float>, _ n: Int, target: Int) -> Double {
        let mx = (0..<n).map { Double(logits[$0]) }.max()!
        let lse = mx + Foundation.log((0..<n).reduce(0.0) { $0 + Foundation.exp(Double(logits[$1]) - mx) })
        return lse - Double(logits[target])
    }

    /// The cached path's logits at every position give the same per-position losses as a full
    /// forward pass over the window, for two different sets of targets.
    @Test func cachedLogitsMatchFullForward() {
        let m = model()
        let T = m.config.context
        var rng = Xoshiro256(seed: 4)
        let bytes = (0..<T).map { _ in Int32(rng.below(256)) }
        let generator = Generator(model: m)
        var cached: [[Float]] = []
        for b in bytes {
            generator.feed(b)
            cached.append(Array(UnsafeBufferPointer(start: generator.logits, count: 256)))
        }
        #expect(generator.length == T)
        for round in 0..<2 {
            let targets = (0..<T).map { _ in Int32(rng.below(256)) }
            for t in 0..<T { m.inputs[t] = bytes[t]; m.targets[t] = targets[t] }
            m.forward(T: T)
            for t in 0..<T {
                let full = Double(m.losses[t])
                let inc = cached[t].withUnsafeBufferPointer { loss($0.baseAddress!, 256, target: Int(targets[t])) }
                #expect(abs(full - inc) < 1e-4, "round \(round), position \(t): full \(full), cached \(inc)")
            }
        }
    }

    /// Past the context the cache restarts on the newest half of the window: the logits then
    /// equal a full forward over those bytes.
    @Test func cacheRestartsPastTheContext() {
        let m = model(context: 8)
        let generator = Generator(model: m)
        let bytes: [Int32] = (0..<9).map { Int32(65 + $0) }
        for b in bytes { generator.feed(b) }
        #expect(generator.length == 5)
        #expect(generator.window == Array(bytes[4...]))
        let fresh = Generator(model: m)
        for b in bytes[4...] { fresh.feed(b) }
        for v in 0..<256 { #expect(generator.logits[v] == fresh.logits[v]) }
    }

    @Test func sameSeedSameBytesOtherSeedOtherBytes() {
        let m = model()
        let g = Generator(model: m)
        let options = SamplingOptions(temperature: 1, topK: 40, seed: 9)
        let a = g.generate(prompt: Array("ab".utf8), count: 40, options: options)
        let b = g.generate(prompt: Array("ab".utf8), count: 40, options: options)
        var other = options
        other.seed = 10
        let c = g.generate(prompt: Array("ab".utf8), count: 40, options: other)
        #expect(a.count == 40)
        #expect(a == b)
        #expect(a != c)
    }

    @Test func drawHonoursTemperatureZeroAndTopK() {
        var logits = [Float](repeating: 0, count: 8)
        logits[5] = 3; logits[2] = 2; logits[7] = 1
        var rng = Xoshiro256(seed: 1)
        logits.withUnsafeBufferPointer { p in
            #expect(Generator.draw(logits: p.baseAddress!, count: 8, options: SamplingOptions(temperature: 0), rng: &rng) == 5)
            var seen = Set<Int>()
            for _ in 0..<200 {
                seen.insert(Generator.draw(logits: p.baseAddress!, count: 8, options: SamplingOptions(temperature: 5, topK: 2), rng: &rng))
            }
            #expect(seen == [5, 2])
        }
    }
}
