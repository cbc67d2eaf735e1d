import RunFormat
import Foundation

/// Draws a run's loss curves as a standalone SVG: training loss (averaged into at most
/// `maxPoints` buckets, so a million steps draw as fast as a hundred), validation loss of each
/// domain at its eval steps, weight and mode changes marked as dashed vertical lines, axes with
/// 1-2-5 ticks and a legend.
public enum SVGExporter {
    public static let maxPoints = 2000

    /// Exports `run` to `output`. Returns the SVG text written.
    @discardableResult
    public static func export(run: String, to output: String, force: Bool = false) throws -> String {
        var replaced = ReplacedRecords()
        let first = try RunFileReader(path: run)
        first.stepDetail = .scalars   // the first pass needs the records' order and steps only
        try first.forEachRecord { replaced.note($0) }
        let reader = try RunFileReader(path: run)
        var curves = Curves(header: reader.header)
        try reader.forEachRecord { if replaced.keep($0) { curves.add($0) } }
        let svg = render(curves, header: reader.header)
        let handle = try OutputFile.create(output, force: force)
        defer { try? handle.close() }
        handle.write(Data(svg.utf8))
        return svg
    }

    /// The data of the chart, folded from records in constant memory (for the training curve).
    public struct Curves {
        /// Training loss buckets: (mean step, mean loss), each covering `bucketWidth` steps.
        public private(set) var train: [(x: Double, y: Double)] = []
        private var bucketWidth = 1
        private var acc = (n: 0, x: 0.0, y: 0.0, start: 0)
        public private(set) var validation: [(name: String, points: [(x: Double, y: Double)])] = []
        public private(set) var marks: [(step: Int, label: String)] = []

        /// The run's header, for the bands' names in the marks.
        public var header: RunHeader?

        public init(header: RunHeader? = nil) { self.header = header }

        /// A change's mark: "context/long 1.50", "depth adaptive", "context/long target 0.30".
        static func markLabel(_ e: EventRecord, header: RunHeader?) -> String {
            var label = e.axis?.rawValue ?? e.kind.rawValue
            if let axis = e.axis, let band = e.band { label += "/" + bandName(header, axis, band) }
            switch e.kind {
            case .mode: label += (e.newValue ?? 0) > 0 ? " adaptive" : " manual"
            case .target: label += e.newValue.map { " target " + Format.fixed($0, 2) } ?? ""
            default: label += e.newValue.map { " " + Format.weight($0) } ?? ""
            }
            return label
        }

        public mutating func add(_ r: Record) {
            switch r {
            case let .step(s):
                guard s.loss.isFinite else { return }
                if acc.n > 0 && s.step >= acc.start + bucketWidth { closeBucket() }
                if acc.n == 0 { acc.start = s.step - s.step % bucketWidth }
                acc.n += 1
                acc.x += Double(s.step)
                acc.y += s.loss
            case let .eval(e):
                for d in e.domains where d.loss.isFinite {
                    if let i = validation.firstIndex(where: { $0.name == d.name }) {
                        validation[i].points.append((Double(e.step), d.loss))
                    } else {
                        validation.append((d.name, [(Double(e.step), d.loss)]))
                    }
                }
            case let .event(e):
                guard [.weight, .mode, .target].contains(e.kind), marks.count < 500 else { return }
                marks.append((e.step, Self.markLabel(e, header: header)))
            default:
                break
            }
        }

        private mutating func closeBucket() {
            train.append((acc.x / Double(acc.n), acc.y / Double(acc.n)))
            acc = (0, 0, 0, 0)
            if train.count >= SVGExporter.maxPoints {
                // Halve the resolution: merge neighbours, double the bucket width.
                var merged: [(x: Double, y: Double)] = []
                merged.reserveCapacity(train.count / 2 + 1)
                var i = 0
                while i + 1 < train.count {
                    merged.append(((train[i].x + train[i + 1].x) / 2, (train[i].y + train[i + 1].y) / 2))
                    i += 2
                }
                if i < train.count { merged.append(train[i]) }
                train = merged
                bucketWidth *= 2
            }
        }

        /// The training curve including the bucket still open.
        public var trainPoints: [(x: Double, y: Double)] {
            acc.n > 0 ? train + [(acc.x / Double(acc.n), acc.y / Double(acc.n))] : train
        }
    }

    static let palette = ["#d1495b", "#00798c", "#edae49", "#66a182", "#8d96a3", "#9b5de5"]

    public static func render(_ c: Curves, header: RunHeader?) -> String {
        var series: [SVGLineChart.Series] = []
        let train = c.trainPoints
        if !train.isEmpty { series.append(.init(name: "train", points: train, color: "#4e79a7", strokeWidth: 1.2)) }
        for (i, v) in c.validation.enumerated() {
            series.append(.init(name: "val " + v.name, points: v.points, color: palette[i % palette.count], strokeWidth: 2, dots: true))
        }
        var chart = SVGLineChart(title: header.map { "Loss — \($0.runName) (preset \($0.preset))" } ?? "Loss",
                                 xLabel: "step", yLabel: "loss (nats)", series: series)
        chart.width = 960
        chart.height = 540
        let xMax = max(1, (train + c.validation.flatMap(\.points)).map(\.x).max() ?? 1, Double(header?.totalSteps ?? 0))
        chart.xRange = 0...xMax
        chart.marks = c.marks.map { SVGLineChart.Mark(x: Double($0.step), title: "step \($0.step): \($0.label)") }
        chart.marksLegend = "weight change"
        return chart.render()
    }
}
