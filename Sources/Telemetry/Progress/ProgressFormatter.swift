import RunFormat

/// Turns records into the plain-text progress lines of `--no-tui` (live training and replay alike).
///
/// Pure and deterministic: the lines depend only on the records, not on the wall clock, so a replay
/// prints exactly what the live run printed. A step line is printed for the first step at or past
/// each multiple of `interval` steps completed, for the first and for the last planned step; evals,
/// events, checkpoints and the end record get a line each. Step records number steps from 0, so
/// step record n is shown as step n+1 of the total (the steps completed).
///
///     step  1200/5000  loss 1.8342  val 1.9021 (2.744 bpb)  lr 3.00e-04  41.2k tok/s  1:42 eta 5:10  | ctx .80/1.20/1.60  time .60/1.00/1.10  depth 1.00/1.00/1.20  flip .31  spikes 2  guard 0
public struct ProgressFormatter {
    public private(set) var header: RunHeader?
    /// Steps between step lines.
    public private(set) var interval: Int
    private let fixedInterval: Bool
    private var nextDue = 0
    private var lastEval: EvalRecord?
    private var spikes = 0

    /// `interval` nil: about 20 lines over the planned steps, rounded to 1, 2 or 5 × 10^k.
    public init(header: RunHeader? = nil, interval: Int? = nil) {
        self.fixedInterval = interval != nil
        self.interval = max(1, interval ?? 1)
        if let header { setHeader(header) }
    }

    public static func defaultInterval(totalSteps: Int) -> Int {
        Int(Ticks.step(atMost: Double(max(1, totalSteps)) / 20))
    }

    /// Sets the header; returns its description line.
    @discardableResult
    public mutating func setHeader(_ h: RunHeader) -> [String] {
        header = h
        if !fixedInterval { interval = ProgressFormatter.defaultInterval(totalSteps: h.totalSteps) }
        let axes = h.axes.map { a in "\(a.axis.rawValue) " + a.bands.map(\.name).joined(separator: "/") }.joined(separator: ", ")
        return ["run   \(h.runName)  preset \(h.preset)  \(Format.compact(Double(h.parameters))) parameters  \(h.totalSteps) steps  seed \(h.seed)  \(h.processSummary)  schema \(h.schema)",
                "      axes: \(axes.isEmpty ? "none" : axes)"]
    }

    /// The lines to print for `record` (often none).
    public mutating func lines(for record: Record) -> [String] {
        switch record {
        case let .step(s):
            if s.spike { spikes += 1 }
            let done = s.stepsCompleted
            let total = header?.totalSteps ?? 0
            guard done >= nextDue || s.step == 0 || done == total else { return [] }
            nextDue = (done / interval + 1) * interval
            return [stepLine(s)]
        case let .eval(e):
            lastEval = e
            return [evalLine(e)]
        case let .event(e):
            return [pad("event", e.step) + describeEvent(e, header: header)]
        case .system:
            return []  // the dashboard's header shows them; progress lines stay about training
        case let .checkpoint(c):
            return [pad("ckpt", c.step) + "\(c.path) (\(Format.bytes(c.bytes)), \(Format.fixed(c.milliseconds, 0)) ms)"]
        case let .end(e):
            var line = pad("end", e.step) + e.reason.rawValue
            if let l = e.finalLoss { line += "  final loss \(Format.fixed(l, 4))" }
            if let l = e.bestValidationLoss { line += "  best val \(Format.fixed(l, 4))" }
            if !e.message.isEmpty { line += "  \(e.message)" }
            return [line]
        }
    }

    private func pad(_ tag: String, _ step: Int) -> String {
        let t = tag + String(repeating: " ", count: max(1, 6 - tag.count))
        let s = String(step)
        return t + String(repeating: " ", count: max(0, 6 - s.count)) + s + "  "
    }

    func stepLine(_ s: StepRecord) -> String {
        let total = header?.totalSteps ?? 0
        var parts: [String] = []
        let done = s.stepsCompleted
        parts.append("step  " + (total > 0 ? "\(done)/\(total)" : "\(done)"))
        parts.append("loss \(Format.fixed(s.loss, 4))")
        if let e = lastEval, let first = e.domains.first {
            var v = "val \(Format.fixed(first.loss, 4)) (\(Format.fixed(first.bitsPerByte, 3)) bpb)"
            for d in e.domains.dropFirst() { v += " \(d.name) \(Format.fixed(d.loss, 4)) (\(Format.fixed(d.bitsPerByte, 3)) bpb)" }
            parts.append(v)
        }
        if let twin = s.twin { parts.append("twin " + twin.summary) }
        parts.append("lr " + String(format: "%.2e", s.learningRate))
        parts.append("\(Format.compact(s.tokensPerSecond)) tok/s")
        var time = Format.clock(s.t)
        if total > 0 && done < total {
            time += " eta " + Format.clock(Double(total - done) * s.t / Double(done))
        }
        parts.append(time)
        var refinement: [String] = []
        for a in s.axes {
            let name = a.axis == .context ? "ctx" : a.axis.rawValue
            refinement.append("\(name) " + a.bands.map { Format.weight($0.weight) }.joined(separator: "/") + (a.mode == .adaptive ? "*" : ""))
        }
        if !s.oscillation.isEmpty {
            let flip = s.oscillation.map(\.flipRate).reduce(0, +) / Double(s.oscillation.count)
            refinement.append("flip \(Format.weight(flip))")
        }
        refinement.append("spikes \(spikes)")
        refinement.append("guard \(s.guardFallbacks)")
        return parts.joined(separator: "  ") + "  | " + refinement.joined(separator: "  ")
    }

    func evalLine(_ e: EvalRecord) -> String {
        var line = pad("eval", e.step) + e.domains.map {
            "\($0.name) \(Format.fixed($0.loss, 4)) nats \(Format.fixed($0.bitsPerByte, 3)) bpb"
        }.joined(separator: " | ")
        if !e.contextGain.isEmpty {
            line += " | " + e.contextGain.map { "dL(\($0.window)) " + (($0.delta >= 0) ? "+" : "") + Format.fixed($0.delta, 3) }.joined(separator: " ")
        }
        return line
    }
}
