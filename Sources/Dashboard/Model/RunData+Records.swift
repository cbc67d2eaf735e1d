import Refinement
import Telemetry

extension RunData {
    /// Takes the run header: band rows and empty histories per band, group and layer.
    public mutating func apply(header: RunHeader) {
        self.header = header
        rows = []
        for (ai, axis) in header.axes.enumerated() {
            for (bi, band) in axis.bands.enumerated() {
                rows.append(BandRow(axis: axis.axis, axisIndex: ai, band: bi, info: band))
            }
        }
        shares = rows.map { _ in DecimatedSeries(capacity: Self.sparkCapacity) }
        weights = rows.map { _ in DecimatedSeries(capacity: Self.sparkCapacity) }
        latestShares = rows.map { _ in nil }
        let groups = Swift.max(1, groupNames.count)
        flip = (0..<groups).map { _ in DecimatedSeries(capacity: Self.sparkCapacity) }
        cosine = (0..<groups).map { _ in DecimatedSeries(capacity: Self.sparkCapacity) }
    }

    /// Folds one record into the histories and the event list.
    public mutating func apply(_ record: Record) {
        recordCount += 1
        lastT = Swift.max(lastT, record.t)
        switch record {
        case let .step(s): apply(step: s)
        case let .eval(e): apply(eval: e)
        case let .event(e): apply(event: e)
        case let .checkpoint(c):
            checkpointStates.append((c.step, lastStep.map { $0.axes.isEmpty ? lastStepWithAxes : $0 } ?? nil))
            if checkpointStates.count > Self.checkpointStatesKept { checkpointStates.removeFirst() }
            addEvent(EventEntry(step: c.step, kind: .checkpoint,
                                text: "\(c.path) (\(Format.bytes(c.bytes)), \(Format.fixed(c.milliseconds, 0)) ms)"))
        case let .end(e):
            end = e
            var text = "run \(e.reason.rawValue)"
            if let l = e.finalLoss { text += " · final loss \(Format.fixed(l, 3))" }
            if let b = e.bestValidationLoss { text += " · best val \(Format.fixed(b, 3))" }
            if !e.message.isEmpty { text += " · \(e.message)" }
            addEvent(EventEntry(step: e.step, kind: .end, text: text))
        case let .system(s):
            system = s
        }
    }

    private mutating func apply(step s: StepRecord) {
        lastStep = s
        if !s.axes.isEmpty { lastStepWithAxes = s }
        resumedAt = nil
        if !appliedWeights.isEmpty { appliedWeights = appliedWeights.filter { $0.value.step > s.step } }
        trainLoss.append(x: s.step, s.loss)
        apply(twinSample: s)
        tokensPerSecond.append(x: s.step, s.tokensPerSecond)
        gradNorms.append(s.gradNorm)
        for sample in s.axes {
            let total = Self.energy(sample)
            for (i, row) in rows.enumerated() where row.axis == sample.axis && row.band < sample.bands.count {
                weights[i].append(x: s.step, sample.bands[row.band].weight)
                let share = Self.share(sample, band: row.band, total: total)
                shares[i].append(x: s.step, share)
                latestShares[i] = share
            }
        }
        while flip.count < s.oscillation.count {
            flip.append(DecimatedSeries(capacity: Self.sparkCapacity))
            cosine.append(DecimatedSeries(capacity: Self.sparkCapacity))
        }
        for (g, o) in s.oscillation.enumerated() {
            flip[g].append(x: s.step, o.flipRate)
            cosine[g].append(x: s.step, o.gradientCosine)
        }
        while longMass.count < s.attentionMass.count { longMass.append(DecimatedSeries(capacity: Self.sparkCapacity)) }
        for (l, mass) in s.attentionMass.enumerated() {
            if let last = mass.last { longMass[l].append(x: s.step, last) }
        }
        if s.spike {
            // Counted here; the Events line comes from the trainer's warning event.
            spikes += 1
            lastSpikeStep = s.step
        }
        if let i = openEffect, i < events.count, var effect = events[i].effect {
            effect.shareAfter = effectShare(effect) ?? effect.shareAfter
            if let g = effect.flipGroup, g < s.oscillation.count { effect.flipAfter = s.oscillation[g].flipRate }
            events[i].effect = effect
        }
    }

    private func effectShare(_ e: WeightEffect) -> Double? {
        guard let i = rows.firstIndex(where: { $0.axisIndex == e.axisIndex && $0.band == e.band }) else { return nil }
        return latestShares[i]
    }

    private mutating func apply(eval e: EvalRecord) {
        evaluations.add(e)
        recordSample(e)
        var parts: [String] = []
        for (k, d) in e.domains.enumerated() {
            Self.appendValidation(d, step: e.step, names: &validationNames, series: &validation)
            var part = "\(RunData.validationLabel(d.name)) \(Format.fixed(d.loss, 3))"
            if k == 0 {
                if bestValidation == nil || d.loss < bestValidation!.loss {
                    bestValidation = (d.loss, e.step)
                    part += " (best)"
                }
            }
            parts.append(part)
        }
        if let g = e.contextGain.first(where: { $0.window == 32 }) ?? e.contextGain.first {
            parts.append("ΔL(\(g.window)) \(Format.fixed(g.delta, 2))")
        }
        addEvent(EventEntry(step: e.step, kind: .eval, text: parts.joined(separator: "  ")))
        if let i = openEffect, i < events.count, var effect = events[i].effect, let v = e.domains.first?.loss {
            effect.valAfter = v
            events[i].effect = effect
        }
    }

    /// Appends one domain's validation loss to the series of its name (a new series for a new
    /// name); shared by the run's own data and the reference runs of `--compare`.
    static func appendValidation(_ d: DomainEval, step: Int, names: inout [String], series: inout [DecimatedSeries]) {
        var i = names.firstIndex(of: d.name) ?? -1
        if i < 0 {
            names.append(d.name)
            series.append(DecimatedSeries(capacity: sparkCapacity))
            i = names.count - 1
        }
        series[i].append(x: step, d.loss)
    }

    private mutating func apply(event e: EventRecord) {
        let bandLabel: String = {
            guard let axis = e.axis else { return "" }
            guard let b = e.band, let row = rows.first(where: { $0.axis == axis && $0.band == b }) else { return axis.rawValue }
            return row.label + (e.layer.map { " L\($0)" } ?? "")
        }()
        let suffix = e.message.isEmpty ? "" : " · \(e.message)"
        switch e.kind {
        case .weight:
            if let axis = e.axis, let band = e.band, let value = e.newValue, e.layer == nil {
                appliedWeights[WeightTarget(axis: axis, band: band)] = (e.step, value)
            }
            let old = e.oldValue.map { Format.fixed($0, 2) } ?? "?"
            let new = e.newValue.map { Format.fixed($0, 2) } ?? "?"
            let entry = EventEntry(step: e.step, kind: .weight, text: "\(bandLabel) \(old) → \(new)  (\(e.source), manual)\(suffix)",
                                   effect: makeEffect(for: e), changeStep: e.step)
            noteChange(step: e.step, axis: e.axis, band: e.band)
            addEvent(entry)
            openEffect = events.count - 1
            let name = rows.first { $0.axis == e.axis && $0.band == e.band }?.info.name ?? bandLabel
            markers.append(WeightMarker(step: e.step, label: "\(name) ×\(new)"))
            if markers.count > Self.maxMarkers { markers.removeFirst(markers.count - Self.maxMarkers) }
        case .mode:
            let on = (e.newValue ?? 0) != 0
            addEvent(EventEntry(step: e.step, kind: .mode, text: "\(bandLabel) \(on ? "adaptive" : "manual")  (\(e.source))",
                                changeStep: e.step))
            noteChange(step: e.step, axis: e.axis, band: nil)
        case .target:
            addEvent(EventEntry(step: e.step, kind: .target,
                                text: "\(bandLabel) target share \(e.newValue.map { Format.percent($0) } ?? "?")  (\(e.source))\(suffix)",
                                changeStep: e.step))
            noteChange(step: e.step, axis: e.axis, band: e.band)
        case .refused:
            // The reason often names the band itself ("context has 3 bands …"): then once.
            let named = bandLabel.isEmpty || e.message.hasPrefix(bandLabel)
            addEvent(EventEntry(step: e.step, kind: .refused, text: "\(named ? "" : bandLabel + " ")\(e.message)"))
        case .pause:
            paused = true
            addEvent(EventEntry(step: e.step, kind: .info, text: "paused (\(e.source))\(suffix)"))
        case .resume:
            paused = false
            addEvent(EventEntry(step: e.step, kind: .info, text: "resumed (\(e.source))\(suffix)"))
        case .resume_run:
            end = nil  // the run goes on after an earlier session's end record
            paused = false  // a new process: not paused, no twin window open
            twinWindow = nil
            forgetSteps(from: e.step)
            addEvent(EventEntry(step: e.step, kind: .info, text: "resumed from checkpoint\(suffix)"))
        case .warning:
            addEvent(EventEntry(step: e.step, kind: .warning, text: e.message))
        case .adaptive:
            addEvent(EventEntry(step: e.step, kind: .mode, text: "adaptive \(bandLabel.isEmpty ? "policies" : bandLabel) on\(suffix)"))
        case .stop:
            addEvent(EventEntry(step: e.step, kind: .info, text: "stop requested (\(e.source))\(suffix)"))
        case .lr:
            let old = e.oldValue.map { Format.value($0) } ?? "?", new = e.newValue.map { Format.value($0) } ?? "?"
            addEvent(EventEntry(step: e.step, kind: .lr, text: "learning-rate scale \(old) → \(new)  (\(e.source))\(suffix)"))
        case .command:
            addEvent(EventEntry(step: e.step, kind: .info, text: "\(e.message.isEmpty ? "command carried out" : e.message)  (\(e.source))"))
        case .twin, .verdict, .revert, .rollback:
            apply(twinEvent: e)
        }
    }

    /// A change that can open a twin window. Several at one step are one window (the trainer's
    /// `Twin.absorb`): the band, or the axis, is cleared where they differ.
    mutating func noteChange(step: Int, axis: ScaleAxis?, band: Int?) {
        if let last = lastChange, last.step == step {
            let sameAxis = last.axis == axis
            lastChange = (step, sameAxis ? axis : nil, sameAxis && last.band == band ? band : nil)
        } else {
            lastChange = (step, axis, band)
        }
    }

    /// An axis' energy in one step's sample: the sum of its bands' (negatives count as 0).
    static func energy(_ sample: AxisSample) -> Double {
        sample.bands.reduce(0) { $0 + Swift.max(0, $1.energy) }
    }

    /// A band's share of its axis' `total` energy (0 where the axis has none).
    static func share(_ sample: AxisSample, band: Int, total: Double) -> Double {
        total > 0 ? Swift.max(0, sample.bands[band].energy) / total : 0
    }

    /// A session resumed from the checkpoint at `step`: the steps from there on are done again,
    /// so the histories forget what an earlier session recorded for them (`ResumeRule`); the
    /// events stay, as the log of what happened.
    mutating func forgetSteps(from step: Int) {
        let firstStep = ResumeRule.firstReplacedStepIndex(resumedAt: step)
        let firstCompleted = ResumeRule.firstReplacedCompletedStep(resumedAt: step)
        // The state the checkpoint holds: the step record before it (header step, weights, modes).
        if let last = lastStep, last.step >= firstStep {
            let older = lastStepWithAxes.flatMap { $0.step < firstStep ? $0 : nil }
            lastStep = checkpointStates.last { $0.step == step }?.lastStep ?? older
            lastStepWithAxes = lastStep
            resumedAt = step
            for (i, row) in rows.enumerated() {
                let sample = lastStep?.axes.first { $0.axis == row.axis }
                latestShares[i] = sample.flatMap { row.band < $0.bands.count ? Self.share($0, band: row.band, total: Self.energy($0)) : nil }
            }
        }
        checkpointStates.removeAll { $0.step >= firstCompleted }
        for series in [\RunData.trainLoss, \RunData.tokensPerSecond, \RunData.twinLoss] { self[keyPath: series].drop(from: firstStep) }
        for i in shares.indices { shares[i].drop(from: firstStep) }
        for i in weights.indices { weights[i].drop(from: firstStep) }
        for i in flip.indices { flip[i].drop(from: firstStep) }
        for i in cosine.indices { cosine[i].drop(from: firstStep) }
        for i in longMass.indices { longMass[i].drop(from: firstStep) }
        for i in validation.indices { validation[i].drop(from: firstCompleted) }
        samples.removeAll { $0.step >= firstCompleted }
        markers.removeAll { $0.step >= firstCompleted }
        appliedWeights = appliedWeights.filter { $0.value.step < firstCompleted }
        evaluations.resume(at: step)
        // Evaluations are records, not events: those replaced leave the Events list too.
        events.removeAll { $0.kind == .eval && $0.step >= firstCompleted }
        openEffect = nil
        if let best = bestValidation, best.step >= firstCompleted {
            // The best of the evaluations kept (each in a bucket of its own at the dashboard's pace).
            bestValidation = validation.first?.buckets.min { $0.min < $1.min }.map { ($0.min, $0.lastX) }
        }
    }

    private func makeEffect(for e: EventRecord) -> WeightEffect? {
        guard let axis = e.axis, let band = e.band,
              let i = rows.firstIndex(where: { $0.axis == axis && $0.band == band }) else { return nil }
        var group: Int?
        var flipBefore: Double?
        if let osc = lastStep?.oscillation, !osc.isEmpty {
            if axis == .depth && band < osc.count {
                group = band
            } else {
                group = osc.indices.max { osc[$0].flipRate < osc[$1].flipRate }
            }
            flipBefore = group.map { osc[$0].flipRate }
        }
        let names = groupNames
        return WeightEffect(bandName: rows[i].info.name, axisIndex: rows[i].axisIndex, band: band,
                            shareBefore: latestShares[i], shareAfter: nil, flipGroup: group,
                            flipGroupName: group.map { $0 < names.count ? names[$0] : "g\($0)" } ?? "",
                            flipBefore: flipBefore, flipAfter: nil, valBefore: latestValidation, valAfter: nil)
    }

    mutating func addEvent(_ entry: EventEntry) {
        events.append(entry)
        if events.count > Self.maxEvents {
            let drop = events.count - Self.maxEvents
            events.removeFirst(drop)
            if let i = openEffect { openEffect = i >= drop ? i - drop : nil }
        }
    }
}
