import RunFormat
import Refinement

/// The scalars of a run flattened into named columns, shared by the CSV and TensorBoard exports.
///
/// Names are dotted paths (`context.local.weight`, `oscillation.lower.flip_rate`,
/// `attention_mass.L0.long`, `val.sonnets.loss`); TensorBoard gets the same names with "/" for ".".
/// The layout comes from a first pass over the file (`ColumnLayout.scan`), so every row has the
/// same columns however the records vary.
public struct ColumnLayout: Sendable, Equatable {
    public var axes: [(axis: ScaleAxis, bands: [String])] = []
    public var layers = 0
    public var heads = 0
    public var contextBands: [String] = []
    public var depthGroups: [String] = []
    public var domains: [String] = []
    public var gainWindows: [Int] = []
    /// Whether any step has a twin sample (then the `twin.*` columns are present).
    public var twin = false

    public static func == (a: ColumnLayout, b: ColumnLayout) -> Bool {
        a.names == b.names
    }

    /// Reads the whole file once to find every axis, layer, head, domain and window used.
    public static func scan(path: String) throws -> (header: RunHeader, layout: ColumnLayout, skipped: Int) {
        let (header, layout, skipped, _) = try scanNotingReplaced(path: path)
        return (header, layout, skipped)
    }

    /// `scan`, noting on the way which records a resumed session replaced (an export's first pass).
    static func scanNotingReplaced(path: String) throws -> (header: RunHeader, layout: ColumnLayout, skipped: Int,
                                                              replaced: ReplacedRecords) {
        let reader = try RunFileReader(path: path)
        let h = reader.header
        var layout = ColumnLayout()
        var seenAxes: [ScaleAxis: Int] = [:]
        var osc = 0
        var massBands = 0   // context bands the attention statistics were measured in
        var replaced = ReplacedRecords()
        try reader.forEachRecord { r in
            replaced.note(r)
            switch r {
            case let .step(s):
                for a in s.axes { seenAxes[a.axis] = max(seenAxes[a.axis] ?? 0, a.bands.count) }
                layout.layers = max(layout.layers, s.attentionMass.count, s.contextEnergyByLayer.count, s.attentionMassByHead.count)
                for l in s.attentionMassByHead { layout.heads = max(layout.heads, l.count) }
                for l in s.attentionMass + s.contextEnergyByLayer { massBands = max(massBands, l.count) }
                osc = max(osc, s.oscillation.count)
                if s.twin != nil { layout.twin = true }
            case let .eval(e):
                for d in e.domains where !layout.domains.contains(d.name) { layout.domains.append(d.name) }
                for g in e.contextGain where !layout.gainWindows.contains(g.window) { layout.gainWindows.append(g.window) }
            default: break
            }
        }
        for axis in ScaleAxis.allCases {
            guard let n = seenAxes[axis] else { continue }
            layout.axes.append((axis, (0..<n).map { bandName(h, axis, $0) }))
        }
        // The bands the statistics came in (two at a short context), else the header's context axis.
        let bands = massBands > 0 ? massBands : max(3, h.axes.first { $0.axis == .context }?.bands.count ?? 0)
        layout.contextBands = (0..<bands).map { bandName(h, .context, $0) }
        layout.depthGroups = (0..<osc).map { bandName(h, .depth, $0) }
        layout.gainWindows.sort()
        return (h, layout, reader.issueCount, replaced)
    }

    /// Step columns, in order.
    public var stepNames: [String] {
        var out = ["loss", "lr", "grad_norm", "clip_scale", "tokens_per_s", "step_ms", "spike", "guard_fallbacks"]
        for (axis, bands) in axes {
            for b in bands { out += ["\(axis.rawValue).\(b).weight", "\(axis.rawValue).\(b).energy"] }
        }
        for g in depthGroups {
            out += ["oscillation.\(g).flip_rate", "oscillation.\(g).grad_cos", "oscillation.\(g).update_cos", "oscillation.\(g).rel_update"]
        }
        out.append("attention.long_range_mass")
        if twin { out += Self.twinNames }
        for l in 0..<layers { for b in contextBands { out.append("attention_mass.L\(l).\(b)") } }
        for l in 0..<layers { for b in contextBands { out.append("context_energy.L\(l).\(b)") } }
        for l in 0..<layers { for h in 0..<heads { for b in contextBands { out.append("attention_mass.L\(l).H\(h).\(b)") } } }
        return out
    }

    /// Eval columns, in order.
    public var evalNames: [String] {
        domains.flatMap { ["val.\(columnName(ofDomain: $0)).loss", "val.\(columnName(ofDomain: $0)).bpb"] }
            + gainWindows.map { "context_gain.\($0)" }
    }

    /// A domain's part of its columns' names: without the held-out prefix (`val.shakespeare.loss`,
    /// not `val.val:shakespeare.loss`), unless another of `domains` has that name.
    static func columnName(ofDomain name: String, among domains: [String]) -> String {
        guard name.hasPrefix(DomainEval.heldOutPrefix) else { return name }
        let bare = String(name.dropFirst(DomainEval.heldOutPrefix.count))
        return domains.contains(bare) ? name : bare
    }

    func columnName(ofDomain name: String) -> String { Self.columnName(ofDomain: name, among: domains) }

    public var names: [String] { stepNames + evalNames }

    /// A step's values in `stepNames` order (NaN where the record lacks one).
    public func values(_ s: StepRecord) -> [Double] {
        var out: [Double] = [s.loss, s.learningRate, s.gradNorm, s.clipScale, s.tokensPerSecond, s.stepMilliseconds,
                             s.spike ? 1 : 0, Double(s.guardFallbacks)]
        for (axis, bands) in axes {
            let sample = s.axes.first { $0.axis == axis }
            for i in bands.indices {
                let b = sample.flatMap { i < $0.bands.count ? $0.bands[i] : nil }
                out += [b?.weight ?? .nan, b?.energy ?? .nan]
            }
        }
        for i in depthGroups.indices {
            let o = i < s.oscillation.count ? s.oscillation[i] : nil
            out += [o?.flipRate ?? .nan, o?.gradientCosine ?? .nan, o?.updateCosine ?? .nan, o?.relativeUpdate ?? .nan]
        }
        out.append(ColumnLayout.longRangeMass(s))
        if twin {
            let t = s.twin
            out += [t?.loss ?? .nan, t.map { s.loss - $0.loss } ?? .nan, t?.delta ?? .nan, t?.low ?? .nan, t?.high ?? .nan]
        }
        func cell(_ m: [[Double]], _ l: Int, _ b: Int) -> Double { l < m.count && b < m[l].count ? m[l][b] : .nan }
        for l in 0..<layers { for b in contextBands.indices { out.append(cell(s.attentionMass, l, b)) } }
        for l in 0..<layers { for b in contextBands.indices { out.append(cell(s.contextEnergyByLayer, l, b)) } }
        for l in 0..<layers {
            for h in 0..<heads {
                for b in contextBands.indices {
                    let layer = l < s.attentionMassByHead.count ? s.attentionMassByHead[l] : []
                    out.append(cell(layer, h, b))
                }
            }
        }
        return out
    }

    /// An eval's values in `evalNames` order.
    public func values(_ e: EvalRecord) -> [Double] {
        var out: [Double] = []
        for name in domains {
            let d = e.domains.first { $0.name == name }
            out += [d?.loss ?? .nan, d?.bitsPerByte ?? .nan]
        }
        for w in gainWindows { out.append(e.contextGain.first { $0.window == w }?.delta ?? .nan) }
        return out
    }

    /// The twin's loss, this step's paired difference d_t, and the window's running paired mean and
    /// its interval (empty outside windows).
    public static let twinNames = ["twin.loss", "twin.d", "twin.delta", "twin.ci_low", "twin.ci_high"]

    /// A verdict's scalars, written by the TensorBoard export at the verdict's step.
    public static func verdictValues(_ e: EventRecord) -> [(String, Double)] {
        guard let v = e.verdict else { return [] }
        return [("verdict.delta", v.delta), ("verdict.ci_low", v.low ?? .nan), ("verdict.ci_high", v.high ?? .nan),
                ("verdict.steps", Double(v.steps))]
            + v.validation.map { ("verdict.\(columnName(ofDomain: $0.name, among: v.validation.map(\.name))).val_delta", $0.delta) }
    }

    /// Attention mass in the last (long) context band, averaged over layers.
    public static func longRangeMass(_ s: StepRecord) -> Double {
        let longs = s.attentionMass.compactMap(\.last)
        return longs.isEmpty ? .nan : longs.reduce(0, +) / Double(longs.count)
    }
}
