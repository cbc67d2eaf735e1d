import Foundation
import Kernels

/// How the next byte is drawn from the logits.
public struct SamplingOptions: Sendable, Equatable {
    /// Divides the logits; 0 takes the most likely byte (greedy).
    public var temperature: Double
    /// Only the k most likely bytes are candidates (nil: all).
    public var topK: Int?
    public var seed: UInt64

    public init(temperature: Double = 0.8, topK: Int? = nil, seed: UInt64 = 1) {
        self.temperature = temperature
        self.topK = topK
        self.seed = seed
    }
}

/// Autoregressive generation with a key/value cache: each new byte costs one position's forward
/// pass (vector–matrix products and attention over the cached keys), not a whole window's.
///
/// Reads the parameters of `model` (never writes them, nor any of the model's buffers), so a
/// trainer can sample between steps without changing its training. When the cache holds
/// `context` positions, it is rebuilt from the last `context / 2` bytes (learned positions do not
/// slide), so any length can be generated.
public final class Generator {
    public let model: GPT
    /// Positions held in the cache.
    public private(set) var length = 0
    /// The bytes the cache holds, oldest first.
    public private(set) var window: [Int32] = []

    private let arena: UnsafeMutablePointer<Float>
    /// Per layer: keys and values [context, C].
    private let keys: [UnsafeMutablePointer<Float>], values: [UnsafeMutablePointer<Float>]
    /// One position's activations.
    private let x, ln, qkv, atty, proj, fch, logitsBuffer, scores, stats: UnsafeMutablePointer<Float>

    public init(model: GPT) {
        self.model = model
        let c = model.config, C = c.channels, T = c.context
        let total = 2 * c.layers * T * C + C + C + 3 * C + C + C + 4 * C + c.vocab + T + 2
        let base = UnsafeMutablePointer<Float>.allocate(capacity: total)
        base.initialize(repeating: 0, count: total)
        arena = base
        var offset = 0
        func take(_ n: Int) -> UnsafeMutablePointer<Float> { defer { offset += n }; return base + offset }
        keys = (0..<c.layers).map { _ in take(T * C) }
        values = (0..<c.layers).map { _ in take(T * C) }
        x = take(C); ln = take(C); qkv = take(3 * C); atty = take(C); proj = take(C); fch = take(4 * C)
        logitsBuffer = take(c.vocab); scores = take(T); stats = take(2)
        precondition(offset == total)
    }

    deinit { arena.deallocate() }

    /// Logits [vocab] for the byte after the last one fed.
    public var logits: UnsafePointer<Float> { UnsafePointer(logitsBuffer) }

    /// Empties the cache.
    public func reset() {
        length = 0
        window.removeAll(keepingCapacity: true)
    }

    /// Feeds one byte at position `length` and computes the logits of the next one.
    public func feed(_ byte: Int32) {
        let T = model.config.context
        if length == T {
            // Positions are learned up to T: restart the cache on the newest half of the window.
            let keep = Array(window.suffix(T / 2))
            reset()
            for b in keep { forwardOne(b) }
        }
        forwardOne(byte)
    }

    /// The forward pass of one position, the cache's row `length`, in the order of `GPT.forward`.
    private func forwardOne(_ byte: Int32) {
        let c = model.config, C = c.channels, V = c.vocab, NH = c.heads
        let p = UnsafePointer(model.params), L = model.layout
        let pos = length
        // x [C] = wte[byte] + wpe[pos]
        var token = byte
        Embedding.forward(out: x, tokens: &token, wte: p + L.wte, wpe: p + L.wpe + pos * C, B: 1, T: 1, C: C, parallel: model.parallel)
        for l in 0..<c.layers {
            let w = L.blocks[l]
            // ln [C] = LayerNorm(x); qkv [3C] = ln · W_qkvᵀ + b
            LayerNorm.forward(out: ln, mean: stats, rstd: stats + 1, inp: x, weight: p + w.ln1w, bias: p + w.ln1b, rows: 1, C: C, parallel: model.parallel)
            Matmul.forward(out: qkv, inp: ln, weight: p + w.qkvw, bias: p + w.qkvb, rows: 1, inC: C, outC: 3 * C, parallel: model.parallel)
            // cache row pos ← k [C], v [C]; atty [C] = attention of q over rows 0...pos
            (keys[l] + pos * C).update(from: qkv + C, count: C)
            (values[l] + pos * C).update(from: qkv + 2 * C, count: C)
            Attention.decode(out: atty, q: qkv, keys: keys[l], values: values[l], length: pos + 1, C: C,
                             heads: NH, scores: scores)
            // x [C] += atty · W_projᵀ + b
            Matmul.forward(out: proj, inp: atty, weight: p + w.attprojw, bias: p + w.attprojb, rows: 1, inC: C, outC: C, parallel: model.parallel)
            Residual.forward(out: x, a: proj, b: x, count: C, parallel: model.parallel)
            // fch [4C] = GELU(LayerNorm(x) · W_fcᵀ + b); x [C] += fch · W_fcprojᵀ + b
            LayerNorm.forward(out: ln, mean: stats, rstd: stats + 1, inp: x, weight: p + w.ln2w, bias: p + w.ln2b, rows: 1, C: C, parallel: model.parallel)
            Matmul.forward(out: fch, inp: ln, weight: p + w.fcw, bias: p + w.fcb, rows: 1, inC: C, outC: 4 * C, parallel: model.parallel)
            GELU.forward(out: fch, inp: fch, count: 4 * C, parallel: model.parallel)
            Matmul.forward(out: proj, inp: fch, weight: p + w.fcprojw, bias: p + w.fcprojb, rows: 1, inC: 4 * C, outC: C, parallel: model.parallel)
            Residual.forward(out: x, a: proj, b: x, count: C, parallel: model.parallel)
        }
        // logits [V] = LayerNorm_f(x) · wteᵀ
        LayerNorm.forward(out: ln, mean: stats, rstd: stats + 1, inp: x, weight: p + L.lnfw, bias: p + L.lnfb, rows: 1, C: C, parallel: model.parallel)
        Matmul.forward(out: logitsBuffer, inp: ln, weight: p + L.wte, bias: nil, rows: 1, inC: C, outC: V, parallel: model.parallel)
        window.append(byte)
        length += 1
    }

    /// Feeds `prompt` (a newline when it is empty), then draws `count` bytes, handing each to
    /// `onByte` as soon as it is drawn. The same options and parameters give the same bytes.
    @discardableResult
    public func generate(prompt: [UInt8], count: Int, options: SamplingOptions,
                         onByte: (UInt8) -> Void = { _ in }) -> [UInt8] {
        reset()
        var rng = Xoshiro256(seed: options.seed)
        for b in prompt.isEmpty ? [10] : prompt { feed(Int32(b)) }
        var out: [UInt8] = []
        out.reserveCapacity(count)
        for i in 0..<count {
            let next = Self.draw(logits: logits, count: model.config.vocab, options: options, rng: &rng)
            out.append(UInt8(truncatingIfNeeded: next))
            onByte(UInt8(truncatingIfNeeded: next))
            if i + 1 < count { feed(Int32(next)) }
        }
        return out
    }

    /// One draw: the argmax at temperature 0, otherwise from softmax(logits / temperature) over
    /// the `topK` largest logits (ties broken by the lower byte).
    public static func draw(logits: UnsafePointer<Float>, count n: Int, options: SamplingOptions,
                            rng: inout Xoshiro256) -> Int {
        var order = Array(0..<n)
        order.sort { logits[$0] > logits[$1] || (logits[$0] == logits[$1] && $0 < $1) }
        if options.temperature <= 0 { return order[0] }
        let k = Swift.max(1, Swift.min(n, options.topK ?? n))
        let top = Double(logits[order[0]])
        var weights = [Double](repeating: 0, count: k)
        var sum = 0.0
        for i in 0..<k {
            weights[i] = Foundation.exp((Double(logits[order[i]]) - top) / options.temperature)
            sum += weights[i]
        }
        var u = rng.uniform() * sum
        for i in 0..<k {
            u -= weights[i]
            if u < 0 { return order[i] }
        }
        return order[k - 1]
    }
}
