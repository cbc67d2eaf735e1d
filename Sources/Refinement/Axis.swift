// The vocabulary shared by every file of the module: the three scale axes, how an axis' weights are
// set, and the two kinds of error (a refused change at run time, a bad setting at start-up).
//
// Refinement is plain values and math with no dependencies. It is the one home of the axis
// vocabulary: Telemetry's records, the trainer, the dashboard and the CLI all use these types.

/// One of the three scale axes of the refinement (docs/METHOD.md).
public enum ScaleAxis: String, CaseIterable, Sendable, Hashable, Codable {
    /// Bands of attention distance, applied inside the attention backward pass.
    case context
    /// Frequency bands of each tensor's gradient over steps, applied before the optimizer.
    case time
    /// Groups of layers, applied to the optimizer's update.
    case depth
}

/// How an axis' weights are set.
public enum AxisMode: String, CaseIterable, Sendable, Hashable, Codable {
    /// The axis is not applied at all: the trainer trains exactly as plain backprop + AdamW.
    case off
    /// Weights come from flags, keys or the API and stay where they are put.
    case manual
    /// Weights come from the axis' adaptive policy every step.
    case adaptive
}

/// Why a change to a weight, a mode or a target was refused; `message` is shown to the user as is.
public struct RefusalReason: Error, Equatable, Sendable, CustomStringConvertible {
    public var message: String

    public init(_ message: String) {
        self.message = message
    }

    public var description: String { message }
}

/// A setting that cannot be used (bad band edges, group count, flag value); `message` names the
/// setting or flag and what was expected.
public struct RefinementError: Error, Equatable, Sendable, CustomStringConvertible {
    public var message: String

    public init(_ message: String) {
        self.message = message
    }

    public var description: String { message }
}
