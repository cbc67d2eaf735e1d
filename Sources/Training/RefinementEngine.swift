import Foundation
import Kernels
import Model
import Refinement
import Telemetry

/// What the refinement measured in one step: the step record's refinement fields.
struct StepMeasurements {
    /// Per axis: mode and, per band, the weight in force and the band's energy.
    var axes: [AxisSample]
    /// [layer][band] context energy.
    var energyByLayer: [[Double]]
    /// [layer][band] attention mass, averaged over heads; and [layer][head][band].
    var mass: [[Double]]
    var massByHead: [[[Double]]]
    /// Per depth group.
    var oscillation: [OscillationSample]
    /// Whether the loss spiked (docs/ARCHITECTURE.md §7.5).
    var spike: Bool
}

/// The refinement's per-step work inside the trainer: it holds the weights, the policies, the
/// time-band filter and the statistics buffers, applies each axis at its place in the step, and
/// turns what it measured into the step record's fields. Each training state (`RunState`) has
/// its own engine.
///
/// Statistics are gathered whether or not an axis is on, so the dashboard shows band shares and
/// oscillation for a plain run too; only the weighting is skipped when an axis is off.
final class RefinementEngine {
    let setup: RefinementSetup
    /// Weights, modes and the three adaptive policies.
    private(set) var scales: ScaleController
    var weights: ScaleWeights { scales.weights }
    let bands: Attention.Bands
    let layers: Int, heads: Int
    /// Depth group of every parameter tensor.
    let groupOfTensor: [Int]
    let parametersInGroup: [Int]

    var oscillation: [OscillationMeter]
    var spikes = SpikeDetector()
    /// The time axis' EMAs: made when the run starts with the time axis on, or when a change turns
    /// it on mid-run (the EMAs then start from the next gradient, as they do at step 0).
    private(set) var timeFilter: TimeBandFilter?
    private let tensorOffsets: [Int], tensorCounts: [Int]
    /// What the engine was built for (a copy is built the same way).
    private let layout: ParameterLayout, totalSteps: Int, context: Int

    /// [layers × bands] Float weights for the attention kernel.
    let contextWeightBuffer: UnsafeMutablePointer<Float>
    /// [layers × bands] energies and [layers × heads × bands] attention mass, reset every step.
    let energy: UnsafeMutablePointer<Double>
    let mass: UnsafeMutablePointer<Double>

    init(setup: RefinementSetup, layout: ParameterLayout, heads: Int, totalSteps: Int, context: Int) throws {
        self.setup = setup
        self.layout = layout
        self.totalSteps = totalSteps
        self.context = context
        var timeParameters = TimePolicy.Parameters()
        if let lambda = setup.config.timeLambda { timeParameters.lambda = lambda }
        var contextParameters = ContextPolicy.Parameters(), depthParameters = DepthPolicy.Parameters()
        contextParameters.schedule = setup.config.policySchedule
        depthParameters.schedule = setup.config.policySchedule
        scales = ScaleController(setup: setup, totalSteps: totalSteps, contextParameters: contextParameters,
                                 timeParameters: timeParameters, depthParameters: depthParameters)
        layers = setup.layers
        self.heads = heads
        bands = Attention.Bands(upperEdges: setup.contextBands.edges, T: context)
        groupOfTensor = try setup.depthGroups(tensorLayers: layout.tensors.map(\.layer))
        var counts = [Int](repeating: 0, count: setup.depthGroupCount)
        for (t, g) in zip(layout.tensors, groupOfTensor) { counts[g] += t.count }
        parametersInGroup = counts
        oscillation = Array(repeating: OscillationMeter(), count: setup.depthGroupCount)
        tensorOffsets = layout.tensors.map(\.offset)
        tensorCounts = layout.tensors.map(\.count)
        let nb = setup.contextBands.count
        contextWeightBuffer = .allocate(capacity: layers * nb)
        energy = .allocate(capacity: layers * nb)
        mass = .allocate(capacity: layers * heads * nb)
        syncContextWeights()
        if setup.config.mode(.time) != .off { try startTimeFilter() }
    }

    deinit {
        contextWeightBuffer.deallocate()
        energy.deallocate()
        mass.deallocate()
    }

    /// Makes the time axis' EMAs if there are none yet; returns whether it made them.
    @discardableResult
    func startTimeFilter() throws -> Bool {
        guard timeFilter == nil else { return false }
        timeFilter = try TimeBandFilter(tensorOffsets: tensorOffsets, tensorCounts: tensorCounts,
                                        betaFast: setup.config.timeBetaFast, betaSlow: setup.config.timeBetaSlow)
        return true
    }

    /// Forgets the time axis' EMAs (restoring a state taken while the axis was off).
    func dropTimeFilter() { timeFilter = nil }

    /// The note an event carries when a change turned the time axis on.
    static let timeAxisStarted = "time axis on from this step: its EMAs start from the next gradient"

    private func syncContextWeights() {
        let nb = bands.count
        for l in 0..<layers {
            for b in 0..<nb { contextWeightBuffer[l * nb + b] = Float(weights.weight(.context, band: b, layer: l)) }
        }
    }

    /// Clears the per-step statistics buffers.
    func beginStep() {
        energy.update(repeating: 0, count: layers * bands.count)
        mass.update(repeating: 0, count: layers * heads * bands.count)
    }

    /// What the backward pass needs: weights when the context axis is on, the energy buffer always.
    var contextRefinement: GPT.ContextRefinement {
        GPT.ContextRefinement(bands: bands,
                              weights: weights.isOn(.context) ? UnsafePointer(contextWeightBuffer) : nil,
                              energy: energy)
    }

    /// Time axis: refines every tensor's gradient in place, split over the kernels' workers.
    /// Returns the summed band statistics.
    func refineTime(grads: UnsafeMutablePointer<Float>, workers: Int) -> TimeBandStats? {
        guard let timeFilter, weights.isOn(.time) else { return nil }
        return timeFilter.refineAll(gradientArena: grads, weights: weights.time, workers: workers)
    }

    /// Depth axis: the learning-rate multiplier of a tensor.
    func depthMultiplier(tensor: Int) -> Float {
        weights.isOn(.depth) ? Float(weights.depth[groupOfTensor[tensor]]) : 1
    }

    /// Folds one step's measurements into the policies and meters; returns the record fields.
    func finishStep(step: Int, loss: Double, perTensor: [TensorUpdateStats],
                    time: TimeBandStats?, tokensPerBatch: Int) -> StepMeasurements {
        let nb = bands.count, G = setup.depthGroupCount
        let energyByLayer = (0..<layers).map { l in (0..<nb).map { energy[l * nb + $0] } }
        // Mass per layer and head, as a fraction of the queries (rows sum to 1).
        let queries = Double(tokensPerBatch)
        let massByHead = (0..<layers).map { l in
            (0..<heads).map { h in (0..<nb).map { mass[(l * heads + h) * nb + $0] / queries } }
        }
        let massByLayer = massByHead.map { hs in (0..<nb).map { b in hs.reduce(0) { $0 + $1[b] } / Double(heads) } }

        var gradSq = [Double](repeating: 0, count: G), updSq = gradSq, parSq = gradSq
        var dot = gradSq, prevSq = gradSq, updDot = gradSq, prevUpdSq = gradSq
        var flips = [Int](repeating: 0, count: G)
        for (i, s) in perTensor.enumerated() {
            let g = groupOfTensor[i]
            gradSq[g] += s.gradSquared
            updSq[g] += s.updateSquared
            parSq[g] += s.paramSquared
            dot[g] += s.gradDotPrevious
            prevSq[g] += s.previousGradSquared
            updDot[g] += s.updateDotPrevious
            prevUpdSq[g] += s.previousUpdateSquared
            flips[g] += s.signFlips
        }
        var osc: [OscillationSample] = []
        for g in 0..<G {
            oscillation[g].observeFlips(flips[g], parameters: parametersInGroup[g])
            if step > 0 {
                oscillation[g].observeGradients(dot: dot[g], aa: gradSq[g], bb: prevSq[g])
                oscillation[g].observeUpdates(dot: updDot[g], aa: updSq[g], bb: prevUpdSq[g])
            }
            let rel = parSq[g] > 0 ? (updSq[g] / parSq[g]).squareRoot() : 0
            osc.append(OscillationSample(flipRate: oscillation[g].flipRate ?? 0,
                                         gradientCosine: oscillation[g].gradientCosine ?? 0,
                                         relativeUpdate: rel, updateCosine: oscillation[g].updateCosine))
        }
        let spike = spikes.observe(loss: loss, step: step)

        // The samples describe the weights in force during this step.
        var axes: [AxisSample] = []
        let contextEnergy = (0..<nb).map { b in energyByLayer.reduce(0) { $0 + $1[b] } }
        axes.append(AxisSample(axis: .context, mode: mode(.context), bands: (0..<nb).map {
            BandSample(weight: meanContextWeight(band: $0), energy: contextEnergy[$0])
        }))
        if let time {
            let norms = time.bandNorms
            axes.append(AxisSample(axis: .time, mode: mode(.time), bands: (0..<3).map {
                BandSample(weight: weights.time.values[$0], energy: norms[$0])
            }))
        }
        axes.append(AxisSample(axis: .depth, mode: mode(.depth), bands: (0..<G).map {
            BandSample(weight: weights.isOn(.depth) ? weights.depth[$0] : 1, energy: gradSq[$0].squareRoot())
        }))

        // Policies set the weights of the next step.
        let changed = scales.update(step: step, contextEnergy: energyByLayer, timeStats: time,
                                    depthUpdateNorms: updSq.map { $0.squareRoot() },
                                    depthParameterNorms: parSq.map { $0.squareRoot() })
        if changed.contains(.context) { syncContextWeights() }
        return StepMeasurements(axes: axes, energyByLayer: energyByLayer, mass: massByLayer,
                                massByHead: massByHead, oscillation: osc, spike: spike)
    }

    /// Whether the adaptive policies' warm-up ends with this step (for the event).
    func adaptiveWarmupEnds(at step: Int) -> Bool { scales.warmupEnds(atStep: step) }

    private func meanContextWeight(band: Int) -> Double {
        guard weights.isOn(.context) else { return 1 }
        return weights.meanWeight(.context, band: band)
    }

    func mode(_ axis: ScaleAxis) -> AxisMode { weights.mode(axis) }

    var guardFallbacks: Int { timeFilter?.guardFallbacks ?? 0 }

    // MARK: - Commands

    /// Applies a weight, mode or target command; returns the event that records it.
    func apply(_ command: Command, step: Int, t: Double) -> EventRecord? {
        let source = command.source
        var event: EventRecord
        switch command.action {
        case let .setWeight(target, value):
            let axis = target.axis
            switch scales.setWeight(axis, band: target.band, layer: target.layer, to: value) {
            case let .success(old):
                if axis == .context { syncContextWeights() }
                let started = axis == .time && startTimeFilterOrFail()
                event = EventRecord(step: step, t: t, kind: .weight, axis: target.axis, band: target.band,
                                    layer: target.layer, oldValue: old, newValue: value, source: source,
                                    message: started ? Self.timeAxisStarted : "")
            case let .failure(reason):
                event = EventRecord(step: step, t: t, kind: .refused, axis: target.axis, band: target.band,
                                    layer: target.layer, newValue: value, source: source, message: reason.message)
            }
        case let .setAdaptive(axis, on):
            let old = scales.setAdaptive(axis, on)
            if axis == .context { syncContextWeights() }
            let started = axis == .time && startTimeFilterOrFail()
            event = EventRecord(step: step, t: t, kind: .mode, axis: axis, oldValue: old == .adaptive ? 1 : 0,
                                newValue: on ? 1 : 0, source: source,
                                message: "\(axis.rawValue) \(on ? "adaptive" : "manual")" + (started ? "; " + Self.timeAxisStarted : ""))
        case let .setTarget(band, share):
            switch scales.setTarget(band: band, share: share) {
            case let .success(old):
                event = EventRecord(step: step, t: t, kind: .target, axis: .context, band: band,
                                    oldValue: old, newValue: share, source: source)
            case let .failure(reason):
                event = EventRecord(step: step, t: t, kind: .refused, axis: .context, band: band,
                                    newValue: share, source: source, message: reason.message)
            }
        default:
            return nil
        }
        event.commandId = command.id
        return event
    }

    /// `startTimeFilter()` for a command: the filter's shapes were checked when the run started, so
    /// making it cannot fail here.
    private func startTimeFilterOrFail() -> Bool {
        do { return try startTimeFilter() } catch { preconditionFailure("time filter for a checked layout: \(error)") }
    }

    /// The axes as the run header describes them.
    func axisInfo() -> [AxisInfo] {
        setup.axisDescriptions().map { d in
                        let adaptive = weights.mode(d.axis) == .adaptive
            return AxisInfo(axis: d.axis, bands: d.bands.map {
                let b = adaptive ? $0.adaptive : $0.manual
                return BandInfo(name: $0.name, extent: $0.extent, floor: b.floor, ceiling: b.ceiling)
            }, edges: d.edges)
        }
    }
}

extension RefinementEngine {
    /// The small state of the weights, policies and meters, for checkpoints (the time filter's
    /// arenas go into their own checkpoint sections).
    struct Snapshot: Codable {
        var scales: ScaleController
        var oscillation: [OscillationMeter]
        var spikes: SpikeDetector
    }

    func snapshot() -> Snapshot {
        Snapshot(scales: scales, oscillation: oscillation, spikes: spikes)
    }

    /// A second engine in this one's state: weights, policies, meters, and the time-band EMAs
    /// (none when this engine has none).
    func copy() -> RefinementEngine {
        // Same setup as this engine, which was built from it: cannot fail.
        let e = try! RefinementEngine(setup: setup, layout: layout, heads: heads, totalSteps: totalSteps, context: context)
        e.assign(from: self)
        return e
    }

    /// Takes `other`'s state (an engine of the same run).
    func assign(from other: RefinementEngine) {
        guard other !== self else { return }
        // Same run, same layout: these cannot fail.
        try! restore(other.snapshot())
        if let time = other.timeFilter?.saveState() {
            try! startTimeFilter()
            try! timeFilter!.restore(time)
        } else {
            // A state from before the time axis was turned on: the axis starts afresh if turned on again.
            dropTimeFilter()
        }
    }

    /// A second engine in the state `snapshot` (weights, policies, meters) with a copy of this
    /// engine's time-band EMAs whenever it has them: the refinement of
    /// a twin, forked from the state just before a change.
    func copy(as snapshot: Snapshot) -> RefinementEngine {
        let e = try! RefinementEngine(setup: setup, layout: layout, heads: heads, totalSteps: totalSteps, context: context)
        try! e.restore(snapshot)
        // The EMAs too, also when the time axis was turned on after the run began (the new
        // engine's setup has it off then): a twin without them would measure the time axis too.
        if let time = timeFilter?.saveState() {
            try! e.startTimeFilter()
            try! e.timeFilter!.restore(time)
        }
        return e
    }

    func restore(_ s: Snapshot) throws {
        guard s.oscillation.count == oscillation.count, s.scales.weights.layers == layers,
              s.scales.weights.contextBandNames.count == bands.count else {
            throw CheckpointError("the checkpoint's scale axes (\(s.scales.weights.contextBandNames.count) context bands, \(s.oscillation.count) depth groups) differ from this run's (\(bands.count), \(oscillation.count))")
        }
        scales = s.scales
        oscillation = s.oscillation
        spikes = s.spikes
        syncContextWeights()
    }
}

extension RefinementConfig {
    /// One line naming each axis' mode and weights, for the run header and the progress output.
    public var summary: String {
        if isPlain { return "off" }
        var parts: [String] = []
        for axis in ScaleAxis.allCases where mode(axis) != .off {
            var s = "\(axis.rawValue)=\(mode(axis).rawValue)"
            switch axis {
            case .context:
                if let e = contextEdges { s += " edges \(e.map(String.init).joined(separator: ","))" }
                if let w = contextWeights { s += " w \(w.map { String($0) }.joined(separator: ","))" }
            case .time:
                if let w = timeWeights { s += " w \(w.high),\(w.mid),\(w.low)" }
                s += " β \(timeBetaFast),\(timeBetaSlow)"
                if let l = timeLambda, mode(.time) == .adaptive { s += " λ \(l)" }
            case .depth:
                if let w = depthWeights { s += " w \(w.map { String($0) }.joined(separator: ","))" }
            }
            if axis != .time, mode(axis) == .adaptive, let w = policyWarmup { s += " warm-up \(w)" }
            parts.append(s)
        }
        return parts.joined(separator: "; ")
    }
}
