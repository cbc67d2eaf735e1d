import Telemetry

/// One evaluation's sample: what the model wrote after the fixed prompt at that step.
public struct SampleEntry: Sendable, Equatable {
    public var step: Int
    public var prompt: String
    public var text: String
}

extension RunData {
    /// Samples kept for the Samples panel (the newest and the ones before it).
    public static let maxSamples = 32

    /// Keeps an eval record's sample, if it has one (files before schema 1.2 have none).
    mutating func recordSample(_ e: EvalRecord) {
        guard let text = e.sample else { return }
        samples.append(SampleEntry(step: e.step, prompt: e.samplePrompt ?? "", text: text))
        if samples.count > Self.maxSamples { samples.removeFirst(samples.count - Self.maxSamples) }
    }
}
