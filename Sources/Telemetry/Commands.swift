// Commands go the other way from records: from an observer (the dashboard, a test, the API) to the
// trainer, which applies them only at a step boundary and answers each with an EventRecord.

import Refinement

/// Which weight a command changes.
public struct WeightTarget: Sendable, Equatable, Hashable, Codable {
    public var axis: ScaleAxis
    public var band: Int
    /// Context axis only: one layer, or nil for every layer.
    public var layer: Int?

    public init(axis: ScaleAxis, band: Int, layer: Int? = nil) {
        self.axis = axis
        self.band = band
        self.layer = layer
    }
}

/// A request to the running trainer. Codable, so that a data-parallel run can carry rank 0's
/// commands to the other ranks (Distributed's CommandCoding).
public enum Command: Sendable, Equatable, Codable {
    /// Set one band's weight (switches that axis to manual).
    case setWeight(WeightTarget, Double, source: String)
    /// Switch an axis between its adaptive policy (true) and manual weights (false).
    case setAdaptive(ScaleAxis, Bool, source: String)
    /// Context axis, adaptive: set the target share π_b of one band (the others are rescaled).
    case setTarget(band: Int, share: Double, source: String)
    case pause
    case resume
    /// Write a checkpoint at the next step boundary.
    case checkpointNow
    /// Stop at the next step boundary (checkpoint and end record are written).
    case stop
    /// Open a twin window with no change (A/A check of the paired estimate).
    case openTwin(source: String)
    /// Make the twin the main run: undo the change under test with its steps.
    case revert(source: String)
}

/// Where observers send commands. The trainer's command queue conforms; tests use a recorder.
public protocol CommandSink: AnyObject, Sendable {
    func send(_ command: Command)
}
