import Foundation

/// Loss and accuracy of a synthetic task's answers, per distance band.
public struct BandScore: Sendable, Equatable, Codable {
    /// Band name (local, phrase, long) and its inclusive distance range.
    public var band: String
    public var lowerDistance: Int
    public var upperDistance: Int
    public var answers: Int
    /// Mean cross-entropy of the answers, in nats.
    public var loss: Double
    /// Fraction of answers whose probability is above 1/2 (so the model's top choice is right).
    public var accuracy: Double

    public init(band: String, lowerDistance: Int, upperDistance: Int, answers: Int, loss: Double, accuracy: Double) {
        self.band = band
        self.lowerDistance = lowerDistance
        self.upperDistance = upperDistance
        self.answers = answers
        self.loss = loss
        self.accuracy = accuracy
    }
}
