/// Where each parameter tensor lives in the one parameter arena (and the same offsets in the
/// gradient and optimizer arenas).
public struct ParameterLayout: Sendable {
    /// One tensor of the model.
    public struct Tensor: Sendable, Equatable {
        public var name: String
        public var offset: Int
        public var count: Int
        /// −1 for the embeddings, 0..<layers for a block, `layers` for the final LayerNorm.
        public var layer: Int
        /// Whether AdamW applies weight decay (matrices only: not gains, biases or positions).
        public var decays: Bool
        /// Whether this is a residual output projection (initialised with a smaller spread).
        public var residualProjection: Bool
        /// Whether this is a LayerNorm gain (initialised to one).
        public var isGain: Bool
    }

    /// Offsets of one block's tensors.
    public struct Block: Sendable {
        public var ln1w = 0, ln1b = 0, qkvw = 0, qkvb = 0, attprojw = 0, attprojb = 0
        public var ln2w = 0, ln2b = 0, fcw = 0, fcb = 0, fcprojw = 0, fcprojb = 0
    }

    public private(set) var tensors: [Tensor] = []
    public private(set) var blocks: [Block] = []
    public private(set) var wte = 0, wpe = 0, lnfw = 0, lnfb = 0
    public private(set) var count = 0

    public init(_ config: GPTConfig) {
        let C = config.channels, V = config.vocab, L = config.layers
        func add(_ name: String, _ n: Int, layer: Int, decays: Bool = false,
                 residual: Bool = false, gain: Bool = false) -> Int {
            let off = count
            tensors.append(Tensor(name: name, offset: off, count: n, layer: layer, decays: decays,
                                  residualProjection: residual, isGain: gain))
            count += n
            return off
        }
        wte = add("wte", V * C, layer: -1, decays: true)
        wpe = add("wpe", config.context * C, layer: -1)
        for l in 0..<L {
            var b = Block()
            b.ln1w = add("h\(l).ln1.w", C, layer: l, gain: true)
            b.ln1b = add("h\(l).ln1.b", C, layer: l)
            b.qkvw = add("h\(l).qkv.w", 3 * C * C, layer: l, decays: true)
            b.qkvb = add("h\(l).qkv.b", 3 * C, layer: l)
            b.attprojw = add("h\(l).attproj.w", C * C, layer: l, decays: true, residual: true)
            b.attprojb = add("h\(l).attproj.b", C, layer: l)
            b.ln2w = add("h\(l).ln2.w", C, layer: l, gain: true)
            b.ln2b = add("h\(l).ln2.b", C, layer: l)
            b.fcw = add("h\(l).fc.w", 4 * C * C, layer: l, decays: true)
            b.fcb = add("h\(l).fc.b", 4 * C, layer: l)
            b.fcprojw = add("h\(l).fcproj.w", 4 * C * C, layer: l, decays: true, residual: true)
            b.fcprojb = add("h\(l).fcproj.b", C, layer: l)
            blocks.append(b)
        }
        lnfw = add("lnf.w", C, layer: L, gain: true)
        lnfb = add("lnf.b", C, layer: L)
    }
}
