// The twin records' one-line summaries for people (the Loss panel, the Events panel, progress
// lines). They are text, not format: they live here, beside the number formatting they use.

import RunFormat

extension TwinSample {
    /// "paired Δ −0.012 [−0.018, −0.006] 120/200", as the Loss panel and progress lines show it.
    public var summary: String {
        var s = "paired Δ " + Format.delta(delta)
        if let low, let high { s += " [" + Format.delta(low) + ", " + Format.delta(high) + "]" }
        return s + " \(pairedSteps)/\(windowSteps)"
    }
}

extension VerdictInfo {
    /// "helped · train −0.012 nats [−0.018, −0.006] over 200 paired steps · val:shakespeare −0.010"
    public var summary: String {
        var s = word.rawValue + " · train " + Format.delta(delta) + " nats"
        if let low, let high { s += " [" + Format.delta(low) + ", " + Format.delta(high) + "]" }
        s += " over \(steps) paired step\(steps == 1 ? "" : "s")"
        if partial { s += " (partial)" }
        for d in validation { s += " · " + d.name + " " + Format.delta(d.delta) }
        return s
    }
}
