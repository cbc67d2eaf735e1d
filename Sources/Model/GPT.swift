import Kernels

/// A byte-level GPT with one arena each for parameters, gradients and activations.
///
/// Nothing is allocated inside `forward` or `backward`: every buffer is a view into an arena sized
/// at init for `batch` windows of up to `config.context` bytes. Parameter gradients are overwritten
/// (not accumulated) by each backward pass, so they need no zeroing.
public final class GPT {
    public let config: GPTConfig
    public let batch: Int
    /// The workers the kernels split their work over.
    public let parallel: Parallel
    public let layout: ParameterLayout
    /// [layout.count] parameters.
    public let params: UnsafeMutablePointer<Float>
    /// [layout.count] gradients, same offsets as `params`.
    public let grads: UnsafeMutablePointer<Float>
    /// Input bytes [batch · context], filled by the caller before `forward`.
    public let inputs: UnsafeMutablePointer<Int32>
    /// Next-byte targets [batch · context].
    public let targets: UnsafeMutablePointer<Int32>
    /// Per-position losses of the last forward pass [batch · T], in nats.
    public var losses: UnsafePointer<Float> { UnsafePointer(acts.losses) }

    private let acts: Activations
    /// When set, every kernel call's time is added to it under the kernel's name.
    public var profiler: PhaseTimer?
    private var lastT = 0
    private var lastWindow: Int?
    /// The parameters of the last forward pass, which its backward pass differentiates.
    private var lastParams: UnsafePointer<Float>?

    /// Context-axis inputs and outputs of the backward pass (docs/ARCHITECTURE.md §7.1).
    public struct ContextRefinement {
        public var bands: Attention.Bands
        /// [layers × bands] weights, or nil for the plain gradient (statistics only).
        public var weights: UnsafePointer<Float>?
        /// [layers × bands] receives Σ (P·dP)² per band (added to), or nil.
        public var energy: UnsafeMutablePointer<Double>?

        public init(bands: Attention.Bands, weights: UnsafePointer<Float>?, energy: UnsafeMutablePointer<Double>?) {
            self.bands = bands
            self.weights = weights
            self.energy = energy
        }
    }

    /// Bytes a model of this shape holds for training at `batch` windows on `workers` threads:
    /// parameters, gradients, the token buffers and the activation arena (an optimizer's state and
    /// the refinement's buffers come on top). In `Double`, so that a shape far too large to
    /// allocate is still counted (and refused) rather than overflowing.
    public static func trainingBytes(config: GPTConfig, batch: Int, workers: Int) -> Double {
        let floats = 2 * Double(ParameterLayout(config).count)
            + Activations.floatCount(config: config, batch: batch, workers: workers, as: Double.self)
        return 4 * floats + 2 * 4 * Double(batch) * Double(config.context)
    }

    /// `parallel`: the workers every kernel of this model splits its work over (`--threads`).
    public init(config: GPTConfig, batch: Int, seed: UInt64, parallel: Parallel) {
        precondition(config.validationError() == nil, config.validationError() ?? "")
        self.config = config
        self.parallel = parallel
        self.batch = batch
        layout = ParameterLayout(config)
        params = .allocate(capacity: layout.count)
        grads = .allocate(capacity: layout.count)
        grads.initialize(repeating: 0, count: layout.count)
        inputs = .allocate(capacity: batch * config.context)
        inputs.initialize(repeating: 0, count: batch * config.context)
        targets = .allocate(capacity: batch * config.context)
        targets.initialize(repeating: 0, count: batch * config.context)
        acts = Activations(config: config, batch: batch, workers: parallel.workers)
        initialize(seed: seed)
    }

    deinit {
        params.deallocate()
        grads.deallocate()
        inputs.deallocate()
        targets.deallocate()
    }

    /// normal(0, 0.02) for matrices and embeddings, residual projections scaled by 1/√(2·layers),
    /// biases 0, LayerNorm gains 1.
    public func initialize(seed: UInt64) {
        var rng = Xoshiro256(seed: seed)
        let residualStd = 0.02 / (2 * Double(config.layers)).squareRoot()
        for t in layout.tensors {
            let p = params + t.offset
            if t.isGain {
                p.update(repeating: 1, count: t.count)
            } else if t.name.hasSuffix(".b") {
                p.update(repeating: 0, count: t.count)
            } else {
                let std = t.residualProjection ? residualStd : 0.02
                for i in 0..<t.count { p[i] = Float(rng.normal() * std) }
            }
        }
    }

    // MARK: - Forward

    /// Runs the model on `inputs` [batch, T] and returns the mean loss against `targets`.
    /// - Parameters:
    ///   - parameters: [layout.count] parameters to run with, laid out as `params` (nil: the
    ///     model's own arena). A trainer's second training state (a twin) passes its own.
    ///   - window: attention sees only the last `window` keys (evaluation of context gain).
    ///   - lossMask: [batch · T] row weights (0 or 1); the loss is the mean over weighted rows.
    ///   - bands, attentionMass: with both, adds the attention mass per band to
    ///     attentionMass[layer × heads × bands] (summed over batch and queries).
    @discardableResult
    public func forward(parameters: UnsafePointer<Float>? = nil, T: Int? = nil, window: Int? = nil,
                        lossMask: UnsafePointer<Float>? = nil, bands: Attention.Bands? = nil,
                        attentionMass: UnsafeMutablePointer<Double>? = nil) -> Float {
        let params = parameters ?? UnsafePointer(self.params)
        let T = T ?? config.context
        precondition(T >= 1 && T <= config.context, "T must be in 1...\(config.context)")
        let B = batch, C = config.channels, V = config.vocab, BT = B * T, NH = config.heads
        let attention = Attention(B: B, T: T, C: C, heads: NH)
        let a = acts
        timed(profiler, "embedding") {
            Embedding.forward(out: a.encoded, tokens: inputs, wte: params + layout.wte,
                              wpe: params + layout.wpe, B: B, T: T, C: C, parallel: parallel)
        }
        var residual = UnsafePointer(a.encoded)
        // Each residual connection is fused with the LayerNorm after it (the next block's first,
        // or the final one); only block 0's first LayerNorm stands alone.
        if config.layers > 0 {
            let w = layout.blocks[0], la = a.layers[0]
            timed(profiler, "layernorm") {
                LayerNorm.forward(out: la.ln1, mean: la.ln1Mean, rstd: la.ln1Rstd, inp: residual,
                                  weight: params + w.ln1w, bias: params + w.ln1b, rows: BT, C: C, parallel: parallel)
            }
        } else {
            timed(profiler, "layernorm") {
                LayerNorm.forward(out: a.lnf, mean: a.lnfMean, rstd: a.lnfRstd, inp: residual,
                                  weight: params + layout.lnfw, bias: params + layout.lnfb, rows: BT, C: C, parallel: parallel)
            }
        }
        for l in 0..<config.layers {
            let w = layout.blocks[l], la = a.layers[l]
            timed(profiler, "matmul") {
                Matmul.forward(out: la.qkv, inp: la.ln1, weight: params + w.qkvw, bias: params + w.qkvb,
                               rows: BT, inC: C, outC: 3 * C, parallel: parallel)
            }
            timed(profiler, "attention") {
                attention.forward(out: la.atty, att: la.att, qkv: la.qkv, window: window, bands: bands,
                                  massOut: attentionMass.map { $0 + l * NH * (bands?.count ?? 0) }, parallel: parallel)
            }
            timed(profiler, "matmul") {
                Matmul.forward(out: la.residual2, inp: la.atty, weight: params + w.attprojw,
                               bias: params + w.attprojb, rows: BT, inC: C, outC: C, parallel: parallel)
            }
            timed(profiler, "residual+layernorm") {
                LayerNorm.residualForward(sum: la.residual2, a: la.residual2, b: residual,
                                          out: la.ln2, mean: la.ln2Mean, rstd: la.ln2Rstd,
                                          weight: params + w.ln2w, bias: params + w.ln2b, rows: BT, C: C, parallel: parallel)
            }
            timed(profiler, "matmul") {
                Matmul.forward(out: la.fch, inp: la.ln2, weight: params + w.fcw, bias: params + w.fcb,
                               rows: BT, inC: C, outC: 4 * C, parallel: parallel)
            }
            timed(profiler, "gelu") {
                // fch: the pre-activation, replaced by GELU′ of it for the backward pass.
                GELU.forward(out: la.fchGelu, derivative: la.fch, inp: la.fch, count: BT * 4 * C, parallel: parallel)
            }
            timed(profiler, "matmul") {
                Matmul.forward(out: la.residual3, inp: la.fchGelu, weight: params + w.fcprojw,
                               bias: params + w.fcprojb, rows: BT, inC: 4 * C, outC: C, parallel: parallel)
            }
            // The next LayerNorm: block l + 1's first, or the final one.
            let (lnOut, lnMean, lnRstd, lnw, lnb) = l + 1 < config.layers
                ? (a.layers[l + 1].ln1, a.layers[l + 1].ln1Mean, a.layers[l + 1].ln1Rstd,
                   layout.blocks[l + 1].ln1w, layout.blocks[l + 1].ln1b)
                : (a.lnf, a.lnfMean, a.lnfRstd, layout.lnfw, layout.lnfb)
            timed(profiler, "residual+layernorm") {
                LayerNorm.residualForward(sum: la.residual3, a: la.residual3, b: la.residual2,
                                          out: lnOut, mean: lnMean, rstd: lnRstd,
                                          weight: params + lnw, bias: params + lnb, rows: BT, C: C, parallel: parallel)
            }
            residual = UnsafePointer(la.residual3)
        }
        timed(profiler, "matmul") {
            Matmul.forward(out: a.probs, inp: a.lnf, weight: params + layout.wte, bias: nil,
                           rows: BT, inC: C, outC: V, parallel: parallel)
        }
        timed(profiler, "cross-entropy") {
            CrossEntropy.forward(probs: a.probs, losses: a.losses, logits: a.probs, targets: targets,
                                 rows: BT, V: V, parallel: parallel)
        }
        // Row scales: the derivative of the mean loss with respect to each row's loss.
        var weightSum: Float = 0
        if let lossMask {
            for r in 0..<BT { weightSum += lossMask[r] }
        } else {
            weightSum = Float(BT)
        }
        let inv = weightSum > 0 ? 1 / weightSum : 0
        var total: Double = 0
        for r in 0..<BT {
            let s = (lossMask?[r] ?? 1) * inv
            a.rowScale[r] = s
            total += Double(a.losses[r]) * Double(s)
        }
        lastT = T
        lastWindow = window
        lastParams = params
        return Float(total)
    }

    // MARK: - Backward

    /// Gradients of the last forward pass's mean loss into `grads` (with respect to the
    /// parameters that pass ran with), with the context axis' weights applied inside attention
    /// when `context` carries them.
    ///
    /// `gradientsReady(offset)` is called as soon as every gradient at `offset` and above is final
    /// (after each weight's gradient within a block, last block first — a block's tensors lie in
    /// the layout in the opposite order of its backward pass — and with 0 at the end), so that a
    /// data-parallel run can reduce those while the rest of the backward pass runs; the pass
    /// writes no gradient at or above an offset it has announced.
    public func backward(context: ContextRefinement? = nil, gradientsReady: ((Int) -> Void)? = nil) {
        precondition(lastT > 0, "backward needs a forward pass first")
        precondition(lastWindow == nil, "backward is for full-context forward passes only")
        let T = lastT
        let B = batch, C = config.channels, V = config.vocab, BT = B * T, NH = config.heads
        let attention = Attention(B: B, T: T, C: C, heads: NH)
        let a = acts, g = grads, p = lastParams ?? UnsafePointer(params)
        let nb = context?.bands.count ?? 0
        timed(profiler, "cross-entropy.bwd") {
            CrossEntropy.backward(dlogits: a.probs, probs: a.probs, targets: targets, rowScale: a.rowScale,
                                  rows: BT, V: V, parallel: parallel)
        }
        timed(profiler, "matmul.bwd") {
            Matmul.backward(dinp: a.dln, dweight: g + layout.wte, dbias: nil, dout: a.probs, inp: a.lnf,
                            weight: p + layout.wte, ones: a.ones, rows: BT, inC: C, outC: V, parallel: parallel)
        }
        let lastResidual = config.layers > 0 ? UnsafePointer(a.layers[config.layers - 1].residual3)
                                             : UnsafePointer(a.encoded)
        timed(profiler, "layernorm.bwd") {
            LayerNorm.backward(dinp: a.dres, dweight: g + layout.lnfw, dbias: g + layout.lnfb, dout: a.dln,
                               inp: lastResidual, weight: p + layout.lnfw, mean: a.lnfMean, rstd: a.lnfRstd,
                               rows: BT, C: C, accumulate: false, scratch: a.lnScratch, parallel: parallel)
        }
        for l in stride(from: config.layers - 1, through: 0, by: -1) {
            let w = layout.blocks[l], la = a.layers[l]
            let residualIn = l == 0 ? UnsafePointer(a.encoded) : UnsafePointer(a.layers[l - 1].residual3)
            timed(profiler, "matmul.bwd") {
                Matmul.backward(dinp: a.dfch, dweight: g + w.fcprojw, dbias: g + w.fcprojb, dout: a.dres,
                                inp: la.fchGelu, weight: p + w.fcprojw, ones: a.ones, rows: BT, inC: 4 * C, outC: C, parallel: parallel)
            }
            gradientsReady?(w.fcprojw)
            timed(profiler, "gelu.bwd") {
                GELU.backward(dinp: a.dfch, derivative: la.fch, dout: a.dfch, count: BT * 4 * C, parallel: parallel)
            }
            timed(profiler, "matmul.bwd") {
                Matmul.backward(dinp: a.dln, dweight: g + w.fcw, dbias: g + w.fcb, dout: a.dfch,
                                inp: la.ln2, weight: p + w.fcw, ones: a.ones, rows: BT, inC: C, outC: 4 * C, parallel: parallel)
            }
            gradientsReady?(w.fcw)
            timed(profiler, "layernorm.bwd") {
                LayerNorm.backward(dinp: a.dres, dweight: g + w.ln2w, dbias: g + w.ln2b, dout: a.dln,
                                   inp: la.residual2, weight: p + w.ln2w, mean: la.ln2Mean, rstd: la.ln2Rstd,
                                   rows: BT, C: C, accumulate: true, scratch: a.lnScratch, parallel: parallel)
            }
            gradientsReady?(w.ln2w)
            timed(profiler, "matmul.bwd") {
                Matmul.backward(dinp: a.datty, dweight: g + w.attprojw, dbias: g + w.attprojb, dout: a.dres,
                                inp: la.atty, weight: p + w.attprojw, ones: a.ones, rows: BT, inC: C, outC: C, parallel: parallel)
            }
            gradientsReady?(w.attprojw)
            timed(profiler, "attention.bwd") {
                attention.backward(dqkv: a.dqkv, dout: a.datty, qkv: la.qkv, att: la.att, scratch: a.dAtt,
                                   bands: context?.bands,
                                   weights: context?.weights.map { $0 + l * nb },
                                   energyOut: context?.energy.map { $0 + l * nb }, parallel: parallel)
            }
            timed(profiler, "matmul.bwd") {
                Matmul.backward(dinp: a.dln, dweight: g + w.qkvw, dbias: g + w.qkvb, dout: a.dqkv,
                                inp: la.ln1, weight: p + w.qkvw, ones: a.ones, rows: BT, inC: C, outC: 3 * C, parallel: parallel)
            }
            gradientsReady?(w.qkvw)
            timed(profiler, "layernorm.bwd") {
                LayerNorm.backward(dinp: a.dres, dweight: g + w.ln1w, dbias: g + w.ln1b, dout: a.dln,
                                   inp: residualIn, weight: p + w.ln1w, mean: la.ln1Mean, rstd: la.ln1Rstd,
                                   rows: BT, C: C, accumulate: true, scratch: a.lnScratch, parallel: parallel)
            }
            // Block l and everything above it in the layout (later blocks, the final LayerNorm) are done.
            gradientsReady?(w.ln1w)
        }
        timed(profiler, "embedding.bwd") {
            Embedding.backward(dwte: g + layout.wte, dwpe: g + layout.wpe, dout: a.dres, tokens: inputs,
                               B: B, T: T, C: C, maxT: config.context)
        }
        gradientsReady?(0)
        lastT = 0
        lastParams = nil
    }
}

/// Views into one allocation holding every activation of a forward pass and the backward scratch.
final class Activations {
    /// After a forward pass `fch` holds GELU′ of the MLP's pre-activation (the backward pass's
    /// only use of it), not the pre-activation itself.
    struct Layer {
        var ln1, ln1Mean, ln1Rstd, qkv, atty, att, residual2: UnsafeMutablePointer<Float>
        var ln2, ln2Mean, ln2Rstd, fch, fchGelu, residual3: UnsafeMutablePointer<Float>
    }

    let arena: UnsafeMutablePointer<Float>
    let count: Int
    let layers: [Layer]
    var encoded, lnf, lnfMean, lnfRstd, probs, losses, rowScale, ones: UnsafeMutablePointer<Float>
    var dres, dln, datty, dqkv, dfch, dAtt, lnScratch: UnsafeMutablePointer<Float>

    /// The arena's float count: one layer's buffers `layers` times, then the rest, in the order
    /// `init` takes them. Generic so that `GPT.trainingBytes` can add it up in `Double` for a
    /// model too large to count in `Int`.
    static func floatCount<N: Numeric>(config: GPTConfig, batch: Int, workers: Int, as _: N.Type) -> N {
        let B = N(exactly: batch)!, T = N(exactly: config.context)!, C = N(exactly: config.channels)!
        let NH = N(exactly: config.heads)!, V = N(exactly: config.vocab)!, W = N(exactly: workers)!
        let BT = B * T
        let perLayer: [N] = [BT * C, BT, BT, BT * 3 * C, BT * C, B * NH * T * T, BT * C,
                             BT * C, BT, BT, BT * 4 * C, BT * 4 * C, BT * C]
        let tail: [N] = [BT * C, BT * C, BT, BT, BT * V, BT, BT, BT,
                         BT * C, BT * C, BT * C, BT * 3 * C, BT * 4 * C, W * T * T,
                         N(exactly: LayerNorm.scratchCount(C: config.channels, workers: workers))!]
        return perLayer.reduce(0, +) * N(exactly: config.layers)! + tail.reduce(0, +)
    }

    init(config: GPTConfig, batch: Int, workers: Int) {
        let B = batch, T = config.context, C = config.channels, NH = config.heads, V = config.vocab
        let BT = B * T
        count = Self.floatCount(config: config, batch: batch, workers: workers, as: Int.self)
        let base = UnsafeMutablePointer<Float>.allocate(capacity: count)
        base.initialize(repeating: 0, count: count)
        arena = base
        var offset = 0
        func take(_ n: Int) -> UnsafeMutablePointer<Float> {
            defer { offset += n }
            return base + offset
        }
        var built: [Layer] = []
        for _ in 0..<config.layers {
            built.append(Layer(
                ln1: take(BT * C), ln1Mean: take(BT), ln1Rstd: take(BT), qkv: take(BT * 3 * C),
                atty: take(BT * C), att: take(B * NH * T * T), residual2: take(BT * C),
                ln2: take(BT * C), ln2Mean: take(BT), ln2Rstd: take(BT), fch: take(BT * 4 * C),
                fchGelu: take(BT * 4 * C), residual3: take(BT * C)))
        }
        layers = built
        encoded = take(BT * C)
        lnf = take(BT * C)
        lnfMean = take(BT)
        lnfRstd = take(BT)
        probs = take(BT * V)
        losses = take(BT)
        rowScale = take(BT)
        ones = take(BT)
        ones.update(repeating: 1, count: BT)
        dres = take(BT * C)
        dln = take(BT * C)
        datty = take(BT * C)
        dqkv = take(BT * 3 * C)
        dfch = take(BT * 4 * C)
        dAtt = take(workers * T * T)
        lnScratch = take(LayerNorm.scratchCount(C: C, workers: workers))
        precondition(offset == count)
    }

    deinit { arena.deallocate() }
}
