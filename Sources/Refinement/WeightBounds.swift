// Floors and ceilings of every band weight (docs/METHOD.md, "Bounds").

/// A closed range of allowed weights.
public struct WeightBounds: Equatable, Sendable {
    public var floor: Double
    public var ceiling: Double

    public init(floor: Double, ceiling: Double) {
        self.floor = floor
        self.ceiling = ceiling
    }

    public func contains(_ value: Double) -> Bool { value >= floor && value <= ceiling }

    /// `value` moved into the range (NaN becomes the floor).
    public func clamp(_ value: Double) -> Double {
        value.isNaN ? floor : Swift.min(Swift.max(value, floor), ceiling)
    }

    /// "[0.5, 4]".
    public var text: String { "[\(formatNumber(floor)), \(formatNumber(ceiling))]" }

    /// "0.5–4", for help lines.
    public var dashText: String { "\(formatNumber(floor))–\(formatNumber(ceiling))" }
}

/// The bounds of each axis and band. Adaptive policies only ever output values within the adaptive
/// bounds; a manual weight (flag, key, API) may use the wider manual range.
///
/// | axis | band | adaptive | manual |
/// | --- | --- | --- | --- |
/// | context | every band | [0.5, 4] | [0.05, 10] |
/// | time | high | [0.25, 1] | [0, 6] |
/// | time | mid | [1, 1] (held at 1) | [0, 6] |
/// | time | low | [1, 4] | [0, 6] |
/// | depth | every group | [0.5, 2] | [0.1, 10] |
///
/// Context and depth weights stay positive (a zero would cut a band or freeze a group); the time
/// axis may go to 0 because its guard falls back to g whenever ⟨ĝ, g⟩ ≤ 0. The time manual
/// ceiling 6 admits Grokfast's λ up to 5.
public enum AxisBounds {
    public static let contextAdaptive = WeightBounds(floor: 0.5, ceiling: 4)
    public static let contextManual = WeightBounds(floor: 0.05, ceiling: 10)
    public static let timeHighAdaptive = WeightBounds(floor: 0.25, ceiling: 1)
    public static let timeMidAdaptive = WeightBounds(floor: 1, ceiling: 1)
    public static let timeLowAdaptive = WeightBounds(floor: 1, ceiling: 4)
    public static let timeManual = WeightBounds(floor: 0, ceiling: 6)
    public static let depthAdaptive = WeightBounds(floor: 0.5, ceiling: 2)
    public static let depthManual = WeightBounds(floor: 0.1, ceiling: 10)

    /// The bounds of band `band` of `axis` under the adaptive policy.
    public static func adaptive(_ axis: ScaleAxis, band: Int) -> WeightBounds {
        switch axis {
        case .context: return contextAdaptive
        case .time: return [timeHighAdaptive, timeMidAdaptive, timeLowAdaptive][Swift.min(Swift.max(band, 0), 2)]
        case .depth: return depthAdaptive
        }
    }

    /// The bounds a weight of `axis` band `band` respects in `mode`: the adaptive bounds for an
    /// adaptive axis, the manual bounds otherwise (a key press or flag makes an axis manual, and an
    /// axis that is off takes manual weights when it is turned on). The trainer, the flags, the
    /// run header and the dashboard all ask here.
    public static func bounds(_ axis: ScaleAxis, band: Int, mode: AxisMode) -> WeightBounds {
        mode == .adaptive ? adaptive(axis, band: band) : manual(axis)
    }

    /// The bounds of a manual weight of `axis` (every band alike).
    public static func manual(_ axis: ScaleAxis) -> WeightBounds {
        switch axis {
        case .context: return contextManual
        case .time: return timeManual
        case .depth: return depthManual
        }
    }
}
