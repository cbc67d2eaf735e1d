import Telemetry

/// A recorded run drawn behind the current one as ghost lines (`--compare`, at most three): its
/// train loss and validation losses by step, folded once when it is loaded.
public struct ReferenceRun: Sendable, Equatable {
    public static let maxCount = 3

    public var name: String
    public var header: RunHeader
    /// Train loss and each validation domain by the reference's own steps.
    public var train = DecimatedSeries(capacity: RunData.historyCapacity)
    public var validationNames: [String] = []
    public var validation: [DecimatedSeries] = []

    public init(header: RunHeader, records: [Record] = []) {
        self.header = header
        name = header.runName
        for r in records { add(r) }
    }

    /// Reads a run file (or run folder) to its end; the error names the file.
    public static func load(path: String) throws -> ReferenceRun {
        let reader = try RunFileReader(path: path)
        reader.stepDetail = .scalars
        var run = ReferenceRun(header: reader.header)
        while let r = try reader.next() { run.add(r) }
        return run
    }

    public mutating func add(_ record: Record) {
        switch record {
        case let .step(s) where s.loss.isFinite:
            train.append(x: s.step, s.loss)
        case let .eval(e):
            for d in e.domains where d.loss.isFinite {
                RunData.appendValidation(d, step: e.step, names: &validationNames, series: &validation)
            }
        default: break
        }
    }

    /// How this reference lines up with `main`: the factor from its steps to the main run's steps
    /// (1 by step; tokens_ref / tokens_main when batch or context differ), and a label of what
    /// differs (preset, data), empty when nothing does.
    public func alignment(to main: RunHeader?) -> (scale: Double, label: String) {
        var notes: [String] = []
        var scale = 1.0
        if let main {
            if let a = header.tokensPerStep, let b = main.tokensPerStep, a != b {
                scale = Double(a) / Double(b)
                notes.append("by tokens")
            }
            if header.preset != main.preset { notes.append("preset \(header.preset)") }
            if header.trainingData?.hash != main.trainingData?.hash { notes.append("other data") }
        }
        return (scale, notes.joined(separator: ", "))
    }

    /// A series moved onto the main run's step axis.
    public static func rescaled(_ s: DecimatedSeries, by scale: Double) -> DecimatedSeries {
        guard scale != 1 else { return s }
        var out = DecimatedSeries(capacity: s.capacity)
        for b in s.buckets { out.append(x: Int((Double(b.lastX) * scale).rounded()), b.mean) }
        return out
    }
}

extension DecimatedSeries {
    /// The value at step `x` at the history's resolution: bucket means (placed at the middle of
    /// their steps) interpolated linearly. Nil when the series starts after `x` or ends well
    /// before it (more than 2 % of `x`), so a shorter run is not compared with its last value.
    public func value(near x: Int) -> Double? {
        guard let first = buckets.first, let last = buckets.last, first.firstX <= x else { return nil }
        func centre(_ b: Bucket) -> Double { Double(b.firstX + b.lastX) / 2 }
        let fx = Double(x)
        if fx >= centre(last) {
            return last.lastX >= x || fx - Double(last.lastX) <= 0.02 * fx ? last.mean : nil
        }
        guard let j = buckets.firstIndex(where: { centre($0) > fx }) else { return last.mean }
        if j == 0 { return first.mean }
        let a = buckets[j - 1], b = buckets[j]
        let w = (fx - centre(a)) / (centre(b) - centre(a))
        return a.mean + w * (b.mean - a.mean)
    }
}
