/// Shape of a byte-level GPT (the GPT-2 layout of llm.c, docs/ARCHITECTURE.md §7.6).
public struct GPTConfig: Equatable, Sendable, Codable {
    public var vocab: Int = 256
    public var layers: Int
    public var heads: Int
    public var channels: Int
    /// Longest context the position table holds.
    public var context: Int

    public init(layers: Int, heads: Int, channels: Int, context: Int, vocab: Int = 256) {
        self.vocab = vocab
        self.layers = layers
        self.heads = heads
        self.channels = channels
        self.context = context
    }

    /// 842,496 parameters.
    public static let S = GPTConfig(layers: 4, heads: 4, channels: 128, context: 128)
    /// 10,844,160 parameters.
    public static let M = GPTConfig(layers: 6, heads: 6, channels: 384, context: 256)

    public var headSize: Int { channels / heads }

    /// The most layers a shape may have: with `maxWidth`, an upper bound so that a mistyped flag
    /// is an error, not a crash in an allocation or an `Int` overflow (the memory check,
    /// `GPT.trainingBytes`, refuses far smaller shapes).
    public static let maxLayers = 4096
    /// The widest `channels` and longest `context` a shape may have (see `maxLayers`).
    public static let maxWidth = 1 << 20

    /// Problems with this shape, or nil when it is usable.
    public func validationError() -> String? {
        if layers < 1 { return "layers must be at least 1 (got \(layers))" }
        if heads < 1 { return "heads must be at least 1 (got \(heads))" }
        if channels < 1 || channels % heads != 0 {
            return "channels (\(channels)) must be a positive multiple of heads (\(heads))"
        }
        if context < 2 { return "context must be at least 2 (got \(context))" }
        // Far beyond what fits in memory, and low enough that the sizes below never overflow Int.
        if layers > Self.maxLayers { return "layers must be at most \(Self.maxLayers) (got \(layers))" }
        if channels > Self.maxWidth { return "channels must be at most \(Self.maxWidth) (got \(channels))" }
        if context > Self.maxWidth { return "context must be at most \(Self.maxWidth) (got \(context))" }
        if vocab < 2 { return "vocab must be at least 2" }
        return nil
    }

    public var parameterCount: Int { ParameterLayout(self).count }

    /// Multiply-adds ×2 of one token's forward pass, counting attention at full causal context.
    public var forwardFLOPsPerToken: Int {
        let C = channels
        let matmuls = layers * 2 * 12 * C * C + 2 * C * vocab
        let attention = layers * 2 * 2 * context * C / 2
        return matmuls + attention
    }
}
