// The weights, modes and policies of a run in one value: what the trainer asks at each step
// boundary ("which weights now?") and where it routes the observers' commands.

/// Owns the `ScaleWeights` and the three adaptive policies of a run.
///
/// Per step the trainer reads `weights`, trains, and then calls `update(step:…)` with what it
/// measured; the policies always keep measuring, and their weights are adopted only on axes that
/// are adaptive. Commands from the dashboard map one to one onto `setWeight`, `setAdaptive` and
/// `setTarget`, whose results carry the old value for the event record or the refusal message.
///
///     var scales = ScaleController(setup: try config.resolve(window: 128, layers: 4), totalSteps: 5000)
///     // … forward/backward with the context weights of scales.weights, time filter, AdamW × φ …
///     let changed = scales.update(step: step, contextEnergy: energy, timeStats: stats,
///                                 depthUpdateNorms: updates, depthParameterNorms: norms)
public struct ScaleController: Equatable, Sendable, Codable {
    public private(set) var weights: ScaleWeights
    public private(set) var context: ContextPolicy
    public private(set) var time: TimePolicy
    public private(set) var depth: DepthPolicy

    public init(
        setup: RefinementSetup, totalSteps: Int,
        contextParameters: ContextPolicy.Parameters = ContextPolicy.Parameters(),
        timeParameters: TimePolicy.Parameters = TimePolicy.Parameters(),
        depthParameters: DepthPolicy.Parameters = DepthPolicy.Parameters()
    ) {
        weights = setup.initialWeights()
        context = ContextPolicy(layers: setup.layers, bands: setup.contextBands.count, parameters: contextParameters)
        time = TimePolicy(totalSteps: totalSteps, parameters: timeParameters)
        depth = DepthPolicy(groups: setup.depthGroupCount, parameters: depthParameters)
    }

    // MARK: - Commands

    /// Sets one band's weight by hand (the axis becomes manual). See `ScaleWeights.set`.
    public mutating func setWeight(_ axis: ScaleAxis, band: Int, layer: Int? = nil, to value: Double) -> Result<Double, RefusalReason> {
        weights.set(axis, band: band, layer: layer, to: value)
    }

    /// Switches an axis to adaptive (true) or to manual, keeping its current weights (false).
    /// Returns the old mode.
    @discardableResult
    public mutating func setAdaptive(_ axis: ScaleAxis, _ adaptive: Bool) -> AxisMode {
        weights.setMode(axis, adaptive ? .adaptive : .manual)
    }

    /// Puts an axis in any mode, off included (restoring a checkpoint). Returns the old mode.
    @discardableResult
    public mutating func setMode(_ axis: ScaleAxis, _ mode: AxisMode) -> AxisMode {
        weights.setMode(axis, mode)
    }

    /// Sets the context policy's target share of one band. See `ContextPolicy.setTarget`.
    public mutating func setTarget(band: Int, share: Double) -> Result<Double, RefusalReason> {
        context.setTarget(band: band, share: share)
    }

    // MARK: - Step boundary

    /// Whether warm-up of the context and depth policies ends with `step` (for the "adaptive
    /// policies in force" event).
    public func warmupEnds(atStep step: Int) -> Bool {
        // A warm-up of 0 steps ends with the first step.
        let context = max(1, self.context.parameters.schedule.warmupSteps)
        let depth = max(1, self.depth.parameters.schedule.warmupSteps)
        return (weights.mode(.context) == .adaptive && step + 1 == context)
            || (weights.mode(.depth) == .adaptive && step + 1 == depth && depth != context)
    }

    /// Feeds the policies what `step` measured (pass nil for what was not measured) and adopts
    /// their weights on the adaptive axes. Returns the axes whose weights changed.
    /// - Parameters:
    ///   - contextEnergy: e[layer][band] of the context axis.
    ///   - timeStats: the time filter's sums over all tensors (nil when the time axis is off).
    ///   - depthUpdateNorms: ‖Δθ_k‖ per depth group, of the update actually applied (with φ_k).
    ///   - depthParameterNorms: ‖θ_k‖ per depth group.
    @discardableResult
    public mutating func update(
        step: Int, contextEnergy: [[Double]]?, timeStats: TimeBandStats?,
        depthUpdateNorms: [Double]?, depthParameterNorms: [Double]?
    ) -> Set<ScaleAxis> {
        var changed = Set<ScaleAxis>()
        if let contextEnergy {
            let proposed = context.update(energy: contextEnergy, step: step)
            let before = weights.context
            if weights.adopt(context: proposed), weights.context != before { changed.insert(.context) }
        }
        if let timeStats {
            let proposed = time.update(stats: timeStats, step: step)
            let before = weights.time
            if weights.adopt(time: proposed), weights.time != before { changed.insert(.time) }
        }
        if let depthUpdateNorms, let depthParameterNorms {
            let proposed = depth.update(
                updateNorms: depthUpdateNorms, parameterNorms: depthParameterNorms,
                appliedWeights: weights.isOn(.depth) ? weights.depth : weights.depth.map { _ in 1 }, step: step)
            let before = weights.depth
            if weights.adopt(depth: proposed), weights.depth != before { changed.insert(.depth) }
        }
        return changed
    }
}
