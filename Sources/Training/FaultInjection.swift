import Foundation
import Model

/// A fault injected on purpose, to see the divergence guard catch it (`gradflow train
/// --debug-fault`, hidden; docs/METHOD.md §6b): the learning rate × `factor` from `step` on (a
/// rate far too high), a NaN in the gradient at `step`, or a batch of random bytes at `step`.
/// Only the main run's fresh batches are touched (a twin's step is not).
public struct FaultInjection: Sendable, Equatable {
    /// What goes wrong (the name before `@` in `--debug-fault`).
    public enum Kind: String, Sendable, CaseIterable {
        case learningRate = "lr"
        case nanGradient = "nan-grad"
        case randomBatch = "random-bytes"
    }

    public var kind: Kind
    public var step: Int
    /// The learning rate's factor (kind `lr`).
    public var factor: Double

    public init(kind: Kind, step: Int, factor: Double = 50) {
        self.kind = kind
        self.step = step
        self.factor = factor
    }

    /// "lr×50@300" (or "lrx50@300"), "nan-grad@300", "random-bytes@300".
    public static func parse(_ text: String) -> FaultInjection? {
        let parts = text.split(separator: "@", maxSplits: 1).map(String.init)
        guard parts.count == 2, let step = Int(parts[1]), step >= 0 else { return nil }
        if let k = Kind(rawValue: parts[0]), k != .learningRate { return FaultInjection(kind: k, step: step) }
        for prefix in ["lr×", "lrx"] where parts[0].hasPrefix(prefix) {
            guard let f = Double(parts[0].dropFirst(prefix.count)), f > 0, f.isFinite else { return nil }
            return FaultInjection(kind: .learningRate, step: step, factor: f)
        }
        return nil
    }

    public static let syntax = "lr×F@STEP (or lrxF@STEP), nan-grad@STEP or random-bytes@STEP"

    /// The learning rate of the step at `step` with the fault in force.
    func learningRate(_ lr: Double, step: Int) -> Double {
        kind == .learningRate && step >= self.step ? lr * factor : lr
    }

    /// After the batch is drawn: a random batch at the fault's step.
    func corruptBatch(_ inputs: UnsafeMutablePointer<Int32>, _ targets: UnsafeMutablePointer<Int32>, count: Int, step: Int) {
        guard kind == .randomBatch, step == self.step else { return }
        var rng = Xoshiro256(seed: 0xFA17 &+ UInt64(step))
        for i in 0..<count {
            inputs[i] = Int32(rng.next() & 0xFF)
            targets[i] = Int32(rng.next() & 0xFF)
        }
    }

    /// After the backward pass: a NaN in the gradient at the fault's step.
    func corruptGradient(_ grads: UnsafeMutablePointer<Float>, step: Int) {
        if kind == .nanGradient, step == self.step { grads[0] = .nan }
    }
}
