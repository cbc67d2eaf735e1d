// The current weight of every band of every axis, and each axis' mode. The single place where a
// weight changes: manual changes are checked and may be refused; policy outputs are clamped.

/// Weights and modes of the three axes.
///
/// Context weights are per layer and band, time weights per band (high, mid, low), depth weights
/// per group. Every weight starts at 1 and every axis `off`.
///
///     var weights = ScaleWeights(layers: 4, contextBands: .standard(window: 128), depthGroups: 3)
///     switch weights.set(.context, band: 2, to: 1.5) {   // every layer; axis becomes manual
///     case .success(let old): print("long \(old) → 1.5")
///     case .failure(let reason): print(reason)            // e.g. outside [0.05, 10]
///     }
public struct ScaleWeights: Equatable, Sendable, Codable {
    public let layers: Int
    public let contextBandNames: [String]
    public let depthGroupNames: [String]
    public static let timeBandNames = ["high", "mid", "low"]

    /// [layer][band].
    public private(set) var context: [[Double]]
    public private(set) var time: TimeWeights
    /// One per depth group.
    public private(set) var depth: [Double]
    private var modes: [ScaleAxis: AxisMode] = [.context: .off, .time: .off, .depth: .off]

    public init(layers: Int, contextBands: ContextBands, depthGroups: Int) {
        self.layers = layers
        contextBandNames = contextBands.names
        depthGroupNames = DepthGroups.names(groups: depthGroups)
        context = Array(repeating: Array(repeating: 1, count: contextBands.count), count: layers)
        time = .unit
        depth = Array(repeating: 1, count: depthGroups)
    }

    /// Band (or group) names of an axis.
    public func bandNames(_ axis: ScaleAxis) -> [String] {
        switch axis {
        case .context: return contextBandNames
        case .time: return Self.timeBandNames
        case .depth: return depthGroupNames
        }
    }

    public func mode(_ axis: ScaleAxis) -> AxisMode { modes[axis] ?? .off }

    /// Whether the trainer applies the axis at all.
    public func isOn(_ axis: ScaleAxis) -> Bool { mode(axis) != .off }

    /// The bounds a weight of `axis` band `band` must respect in the axis' current mode (the
    /// manual bounds when the axis is off).
    public func bounds(_ axis: ScaleAxis, band: Int) -> WeightBounds {
        AxisBounds.bounds(axis, band: band, mode: mode(axis))
    }

    /// The weight of one band (context: of one layer, default layer 0).
    public func weight(_ axis: ScaleAxis, band: Int, layer: Int = 0) -> Double {
        switch axis {
        case .context: return context[layer][band]
        case .time: return time.values[band]
        case .depth: return depth[band]
        }
    }

    /// The weight of one band as a step record shows it: for the context axis, the mean over the
    /// layers.
    public func meanWeight(_ axis: ScaleAxis, band: Int) -> Double {
        guard axis == .context else { return weight(axis, band: band) }
        return (0..<layers).reduce(0) { $0 + context[$1][band] } / Double(layers)
    }

    /// Sets one band's weight by hand (for the context axis on one layer, or every layer when
    /// `layer` is nil) and makes the axis manual.
    /// - Returns: the old weight (of the layer, or the mean over the layers when every layer is
    ///   set), or why the change was refused: an
    ///   unknown band or layer, a layer on an axis without layers, a value that is not finite or
    ///   is outside the axis' manual bounds.
    public mutating func set(_ axis: ScaleAxis, band: Int, layer: Int? = nil, to value: Double) -> Result<Double, RefusalReason> {
        let names = bandNames(axis)
        guard band >= 0 && band < names.count else {
            return .failure(RefusalReason(
                "\(axis.rawValue) has \(names.count) band\(names.count == 1 ? "" : "s") (0–\(names.count - 1): \(names.joined(separator: ", "))); there is no band \(band)"))
        }
        let label = "\(axis.rawValue).\(names[band])"
        if let layer {
            guard axis == .context else {
                return .failure(RefusalReason("\(label): only the context axis has weights per layer; got layer \(layer)"))
            }
            guard layer >= 0 && layer < layers else {
                return .failure(RefusalReason("\(label): the model has layers 0–\(layers - 1); there is no layer \(layer)"))
            }
        }
        guard value.isFinite else {
            return .failure(RefusalReason("\(label): a weight must be a finite number, got \(value)"))
        }
        let range = AxisBounds.manual(axis)
        guard range.contains(value) else {
            return .failure(RefusalReason(
                "\(label): \(formatNumber(value)) is outside the manual range \(range.text)"))
        }
        let old = layer.map { weight(axis, band: band, layer: $0) } ?? meanWeight(axis, band: band)
        switch axis {
        case .context:
            for l in 0..<layers where layer == nil || layer == l { context[l][band] = value }
        case .time:
            switch band {
            case 0: time.high = value
            case 1: time.mid = value
            default: time.low = value
            }
        case .depth:
            depth[band] = value
        }
        modes[axis] = .manual
        return .success(old)
    }

    /// Switches an axis' mode and returns the old one. Switching to adaptive clamps the current
    /// weights into the adaptive bounds at once, so an adaptive axis never holds a weight its
    /// policy could not have set. Weights are kept when an axis is switched off.
    @discardableResult
    public mutating func setMode(_ axis: ScaleAxis, _ mode: AxisMode) -> AxisMode {
        let old = self.mode(axis)
        modes[axis] = mode
        if mode == .adaptive {
            switch axis {
            case .context: context = clampedContext(context)
            case .time: time = clampedTime(time)
            case .depth: depth = clampedDepth(depth)
            }
        }
        return old
    }

    // MARK: - Policy outputs

    /// Takes the context policy's weights ([layer][band]), clamped to the adaptive bounds.
    /// Ignored (returns false) unless the axis is adaptive or the shape does not match.
    @discardableResult
    public mutating func adopt(context proposed: [[Double]]) -> Bool {
        guard mode(.context) == .adaptive, proposed.count == layers,
              proposed.allSatisfy({ $0.count == contextBandNames.count }) else { return false }
        context = clampedContext(proposed)
        return true
    }

    /// Takes the time policy's weights, clamped to the adaptive bounds (only when adaptive).
    @discardableResult
    public mutating func adopt(time proposed: TimeWeights) -> Bool {
        guard mode(.time) == .adaptive else { return false }
        time = clampedTime(proposed)
        return true
    }

    /// Takes the depth policy's weights, clamped to the adaptive bounds (only when adaptive).
    @discardableResult
    public mutating func adopt(depth proposed: [Double]) -> Bool {
        guard mode(.depth) == .adaptive, proposed.count == depth.count else { return false }
        depth = clampedDepth(proposed)
        return true
    }

    private func clampedContext(_ weights: [[Double]]) -> [[Double]] {
        weights.map { $0.map { AxisBounds.contextAdaptive.clamp($0) } }
    }

    private func clampedTime(_ weights: TimeWeights) -> TimeWeights {
        TimeWeights(
            high: AxisBounds.timeHighAdaptive.clamp(weights.high),
            mid: AxisBounds.timeMidAdaptive.clamp(weights.mid),
            low: AxisBounds.timeLowAdaptive.clamp(weights.low))
    }

    private func clampedDepth(_ weights: [Double]) -> [Double] {
        weights.map { AxisBounds.depthAdaptive.clamp($0) }
    }
}
