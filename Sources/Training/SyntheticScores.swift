import Foundation
import Corpus

extension Trainer {
    /// Scores the model on `windows` fixed validation windows of the training task, per band;
    /// nil when the training data is not a synthetic task. Accuracy counts an answer as right when
    /// p(answer) > 1/2, i.e. its loss is below ln 2 — this implies the answer is the top choice
    /// and needs no access to the full distribution.
    public func syntheticScores(windows: Int) -> [BandScore]? {
        guard let task = train.task else { return nil }
        let T = config.context, B = config.batch
        let ranges = task.bandRanges(T: T), names = task.bandNames(T: T)
        var loss = [Double](repeating: 0, count: ranges.count)
        var right = [Int](repeating: 0, count: ranges.count), count = right
        var first = 0
        while first < windows {
            let real = min(B, windows - first)
            var answers: [[SyntheticTask.Answer]] = []
            for b in 0..<B {
                let w = task.validationWindow(first + min(b, real - 1), T: T)
                SyntheticTask.fill(w, row: b, T: T, inputs: model.inputs, targets: model.targets, mask: nil)
                answers.append(w.answers)
            }
            model.forward(T: T)
            let losses = model.losses
            for b in 0..<real {
                for a in answers[b] {
                    let l = Double(losses[b * T + a.position])
                    loss[a.band] += l
                    count[a.band] += 1
                    if l < log(2.0) { right[a.band] += 1 }
                }
            }
            first += B
        }
        return ranges.indices.map { i in
            BandScore(band: names[i], lowerDistance: ranges[i].lowerBound, upperDistance: ranges[i].upperBound,
                      answers: count[i], loss: count[i] > 0 ? loss[i] / Double(count[i]) : .nan,
                      accuracy: count[i] > 0 ? Double(right[i]) / Double(count[i]) : .nan)
        }
    }
}
