import ArgumentParser
import Model

/// The model-shape flags shared by `train` and `bench`.
struct ModelOptions: ParsableArguments {
    @Option(name: .long, help: "Model preset: S (842k params, T 128) or M (10.8M params, T 256).")
    var preset: String = "S"

    @Option(name: .long, help: "Transformer blocks (overrides the preset).")
    var layers: Int?

    @Option(name: .long, help: "Attention heads (overrides the preset).")
    var heads: Int?

    @Option(name: .long, help: "Channels C (overrides the preset; a multiple of --heads).")
    var dim: Int?

    @Option(name: .long, help: "Context length T in bytes (overrides the preset).")
    var context: Int?

    @Option(name: .long, help: "Windows per batch (default 8).")
    var batch: Int = 8

    /// The model shape and the preset's name ("custom" when any flag overrides it).
    func resolve() throws -> (GPTConfig, String) {
        var config: GPTConfig
        switch preset.uppercased() {
        case "S": config = .S
        case "M": config = .M
        default: throw ValidationError("--preset must be S or M (got '\(preset)')")
        }
        var name = preset.uppercased()
        if let layers { config.layers = layers; name = "custom" }
        if let heads { config.heads = heads; name = "custom" }
        if let dim { config.channels = dim; name = "custom" }
        if let context { config.context = context; name = "custom" }
        if let e = config.validationError() { throw ValidationError(e) }
        if batch < 1 { throw ValidationError("--batch must be at least 1 (got \(batch))") }
        return (config, name)
    }
}
