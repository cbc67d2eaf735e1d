// The records a training run publishes, in the order the run file stores them (docs/FORMAT.md).
//
// Records are plain values: the trainer builds them, the bus carries them, the recorder writes
// them, the reader rebuilds them and the dashboard folds them into its state. Nothing here knows
// about the model or the terminal. The axis vocabulary (ScaleAxis, AxisMode) is Refinement's.

import Foundation
import JSONCore
import Refinement

/// Static description of one band of one axis, written once in the run header.
public struct BandInfo: Sendable, Equatable, Codable {
    /// Short name shown in the dashboard, e.g. "local", "high", "lower".
    public var name: String
    /// Human description of the band's extent, e.g. "0–8", "β .90", "L0–1".
    public var extent: String
    /// Lowest and highest weight a policy or a key may set.
    public var floor: Double
    public var ceiling: Double

    public init(name: String, extent: String, floor: Double, ceiling: Double) {
        self.name = name
        self.extent = extent
        self.floor = floor
        self.ceiling = ceiling
    }
}

/// Static description of one scale axis: its bands, in order.
public struct AxisInfo: Sendable, Equatable, Codable {
    public var axis: ScaleAxis
    public var bands: [BandInfo]
    /// Context axis: the band edges on attention distance (upper inclusive edge of every band but
    /// the last). Time axis: the EMA betas. Depth axis: the first layer of every group but the first.
    public var edges: [Double]

    public init(axis: ScaleAxis, bands: [BandInfo], edges: [Double]) {
        self.axis = axis
        self.bands = bands
        self.edges = edges
    }
}

/// One data source of a run, with enough to tell whether a replay used the same bytes.
public struct DataSourceInfo: Sendable, Equatable, Codable {
    /// "train:NAME" for the training data ("train" in older files), otherwise the validation
    /// domain's name.
    public var name: String
    public var path: String
    public var bytes: Int
    /// Hex FNV-1a 64 of the file's bytes.
    public var hash: String

    /// How the training data's name begins.
    public static let trainingPrefix = "train:"

    /// NAME of a "train:NAME" entry (empty for "train" and for validation domains).
    public var trainingName: String { name.hasPrefix(Self.trainingPrefix) ? String(name.dropFirst(Self.trainingPrefix.count)) : "" }

    public init(name: String, path: String, bytes: Int, hash: String) {
        self.name = name
        self.path = path
        self.bytes = bytes
        self.hash = hash
    }
}

/// The first line of a run file.
public struct RunHeader: Sendable, Equatable {
    /// Format version; a reader refuses a major version it does not know.
    public var schema: String
    /// Short human name of the run (the run directory's name by default).
    public var runName: String
    /// The full training configuration, as the trainer describes it.
    public var config: JSONValue
    public var axes: [AxisInfo]
    public var seed: UInt64
    public var data: [DataSourceInfo]
    /// Seconds since 1970 at the start of the run.
    public var startTime: Double
    public var threads: Int
    /// Processes of a data-parallel run (`mpirun -np N`); 1 for one process. Written to the run
    /// file only when above 1, and read as 1 when absent.
    public var ranks: Int
    /// Model size, for the dashboard's header.
    public var parameters: Int
    /// Planned number of steps.
    public var totalSteps: Int
    /// Preset name ("S", "M") or "custom".
    public var preset: String
    /// For a fork: the run it continues (absent in other runs and in older files).
    public var parent: RunParent?
    /// A random id made when the run was created (1.3; "" in older files): the command channel's
    /// lines name it, so a command meant for another run is refused. A resume keeps it.
    public var runId: String = ""

    /// A new run id: 32 random hex digits.
    public static func newRunId() -> String {
        UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased()
    }

    public init(
        schema: String = RunHeader.currentSchema, runName: String, config: JSONValue, axes: [AxisInfo],
        seed: UInt64, data: [DataSourceInfo], startTime: Double, threads: Int, parameters: Int,
        totalSteps: Int, preset: String, ranks: Int = 1
    ) {
        self.schema = schema
        self.runName = runName
        self.config = config
        self.axes = axes
        self.seed = seed
        self.data = data
        self.startTime = startTime
        self.threads = threads
        self.ranks = ranks
        self.parameters = parameters
        self.totalSteps = totalSteps
        self.preset = preset
    }

    /// Tokens one step trains on (batch × context from the config), when the config has both.
    public var tokensPerStep: Int? {
        guard case let .number(b)? = config["batch"], case let .number(t)? = config["context"], b > 0, t > 0 else { return nil }
        return Int(b) * Int(t)
    }

    /// The training data's entry: named "train:NAME" ("train" in older files).
    public var trainingData: DataSourceInfo? {
        data.first { $0.name == DataSourceInfo.trainingPrefix.dropLast() || $0.name.hasPrefix(DataSourceInfo.trainingPrefix) }
    }

    /// How the run was spread over processes: "2 ranks × 1 threads", or "2 threads" for one process.
    public var processSummary: String {
        ranks > 1 ? "\(ranks) ranks × \(threads) threads" : "\(threads) threads"
    }

    /// The schema this version writes; what each version added is docs/FORMAT.md, "Versioning".
    public static let currentSchema = "gradflow.run/1.3"
}

/// Where a forked run comes from: the parent run, the step it continued from and the checkpoint.
public struct RunParent: Sendable, Equatable {
    /// The parent's run name (its folder's name).
    public var run: String
    public var step: Int
    /// Path of the checkpoint the fork started from.
    public var checkpoint: String

    public init(run: String, step: Int, checkpoint: String) {
        self.run = run
        self.step = step
        self.checkpoint = checkpoint
    }
}

/// Measurements of one band at one step.
public struct BandSample: Sendable, Equatable {
    /// The weight in force during this step.
    public var weight: Double
    /// Context: Σ (P⊙dP)² over the band, summed over layers. Time: ‖band‖. Depth: ‖g_group‖.
    public var energy: Double

    public init(weight: Double, energy: Double) {
        self.weight = weight
        self.energy = energy
    }
}

/// Measurements of one axis at one step.
public struct AxisSample: Sendable, Equatable {
    public var axis: ScaleAxis
    public var mode: AxisMode
    /// One sample per band, in the order of the header's AxisInfo.
    public var bands: [BandSample]

    public init(axis: ScaleAxis, mode: AxisMode, bands: [BandSample]) {
        self.axis = axis
        self.mode = mode
        self.bands = bands
    }
}

/// Oscillation of one depth group's updates at one step (docs/ARCHITECTURE.md §7.5).
public struct OscillationSample: Sendable, Equatable {
    /// Fraction of parameters whose update changed sign since the previous step (EMA).
    public var flipRate: Double
    /// EMA of cos(g_t, g_{t−1}) over the group's gradient.
    public var gradientCosine: Double
    /// ‖Δθ‖ / ‖θ‖ of the group this step.
    public var relativeUpdate: Double
    /// EMA of cos(Δθ_t, Δθ_{t−1}) over the group's update; nil before the second step and in
    /// files written before it was measured.
    public var updateCosine: Double?

    public init(flipRate: Double, gradientCosine: Double, relativeUpdate: Double, updateCosine: Double? = nil) {
        self.flipRate = flipRate
        self.gradientCosine = gradientCosine
        self.relativeUpdate = relativeUpdate
        self.updateCosine = updateCosine
    }
}

/// Everything measured in one training step.
public struct StepRecord: Sendable, Equatable {
    /// The step's index, from 0 (an eval or end record's `step` is steps completed instead).
    public var step: Int
    /// Steps completed with this one: what the eval and end records that follow it say.
    public var stepsCompleted: Int { step + 1 }
    /// Seconds since the start of the run.
    public var t: Double
    /// Mean training cross-entropy in nats.
    public var loss: Double
    public var learningRate: Double
    /// Global gradient norm before clipping.
    public var gradNorm: Double
    /// Clip scale applied (1 when not clipped).
    public var clipScale: Double
    public var tokensPerSecond: Double
    public var stepMilliseconds: Double
    /// One sample per axis that is not off, in the order context, time, depth.
    public var axes: [AxisSample]
    /// Context axis per layer: energy per band ([layer][band]).
    public var contextEnergyByLayer: [[Double]]
    /// Attention mass per layer per context band, averaged over heads and queries ([layer][band]).
    public var attentionMass: [[Double]]
    /// Attention mass per layer, head and band ([layer][head][band]); empty when not measured.
    public var attentionMassByHead: [[[Double]]]
    /// One sample per depth group.
    public var oscillation: [OscillationSample]
    /// Whether this step's loss was a spike (Refinement's `SpikeRule`).
    public var spike: Bool
    /// Cumulative number of tensor-steps where the time axis' guard fell back to the plain gradient.
    public var guardFallbacks: Int
    /// The paired twin's sample while a twin window is open (nil otherwise).
    public var twin: TwinSample? = nil

    public init(
        step: Int, t: Double, loss: Double, learningRate: Double, gradNorm: Double, clipScale: Double,
        tokensPerSecond: Double, stepMilliseconds: Double, axes: [AxisSample] = [],
        contextEnergyByLayer: [[Double]] = [], attentionMass: [[Double]] = [],
        attentionMassByHead: [[[Double]]] = [], oscillation: [OscillationSample] = [],
        spike: Bool = false, guardFallbacks: Int = 0
    ) {
        self.step = step
        self.t = t
        self.loss = loss
        self.learningRate = learningRate
        self.gradNorm = gradNorm
        self.clipScale = clipScale
        self.tokensPerSecond = tokensPerSecond
        self.stepMilliseconds = stepMilliseconds
        self.axes = axes
        self.contextEnergyByLayer = contextEnergyByLayer
        self.attentionMass = attentionMass
        self.attentionMassByHead = attentionMassByHead
        self.oscillation = oscillation
        self.spike = spike
        self.guardFallbacks = guardFallbacks
    }
}

/// Validation of one domain at an eval step.
public struct DomainEval: Sendable, Equatable {
    public var name: String
    /// Mean cross-entropy in nats.
    public var loss: Double
    public var bitsPerByte: Double { loss / 0.6931471805599453 }

    public init(name: String, loss: Double) {
        self.name = name
        self.loss = loss
    }

    /// How the trainer names the training data's own held-out split ("val:shakespeare"); the
    /// other domains go by their files' names.
    public static let heldOutPrefix = "val:"

    /// `name` with the held-out prefix, whether or not the writer already put it there.
    public static func prefixed(_ name: String) -> String {
        name.hasPrefix(heldOutPrefix) ? name : heldOutPrefix + name
    }
}

/// Validation results at an eval interval (docs/ARCHITECTURE.md §7.5).
public struct EvalRecord: Sendable, Equatable {
    public var step: Int
    public var t: Double
    /// One entry per validation domain; the first is the training domain's held-out split.
    public var domains: [DomainEval]
    /// Mean loss by position in the window, reduced to at most 32 buckets, first domain only.
    public var lossByPosition: [Double]
    /// Context gain ΔL(c) = loss with attention window c − loss with full context, for each c.
    public var contextGain: [ContextGain]
    /// Text the model wrote after `samplePrompt` at this step (fixed prompt and seed); nil in
    /// files written before samples were recorded.
    public var samplePrompt: String?
    public var sample: String?

    public init(step: Int, t: Double, domains: [DomainEval], lossByPosition: [Double] = [],
                contextGain: [ContextGain] = [], samplePrompt: String? = nil, sample: String? = nil) {
        self.step = step
        self.t = t
        self.domains = domains
        self.lossByPosition = lossByPosition
        self.contextGain = contextGain
        self.samplePrompt = samplePrompt
        self.sample = sample
    }
}

/// ΔL at one attention window.
public struct ContextGain: Sendable, Equatable {
    public var window: Int
    public var delta: Double

    public init(window: Int, delta: Double) {
        self.window = window
        self.delta = delta
    }
}

/// Something that happened at a step boundary: a weight change, a mode change, a pause, a refusal.
public struct EventRecord: Sendable, Equatable {
    public enum Kind: String, Sendable, CaseIterable {
        /// A band weight changed (manual key or flag).
        case weight
        /// An axis switched between manual and adaptive.
        case mode
        /// A band's target share changed (context axis, adaptive).
        case target
        /// A command was refused; `message` says why.
        case refused
        case pause
        case resume
        /// The run continued from a checkpoint.
        case resume_run = "resume-run"
        /// A loss spike, a guard fallback burst or another warning.
        case warning
        /// Adaptive policies came into force after warm-up.
        case adaptive
        /// A user asked to stop.
        case stop
        /// A twin window opened with no change (A/A check).
        case twin
        /// A twin window closed: `verdict` holds the paired estimate.
        case verdict
        /// The twin became the main run (the change under test was undone with its steps).
        case revert
        /// The divergence guard restored its last snapshot: `rollback` says what was lost.
        case rollback
        /// The learning-rate scale changed (1.3): `old` and `new` are the scales, `message` says
        /// the rates and why (a command, or the guard lowering it on repeated divergence).
        case lr
        /// A command-channel command carried out without an event of its own (1.3).
        case command
    }

    public var step: Int
    public var t: Double
    public var kind: Kind
    /// Axis and band the event concerns, when it concerns one; layer nil means all layers.
    public var axis: ScaleAxis?
    public var band: Int?
    public var layer: Int?
    public var oldValue: Double?
    public var newValue: Double?
    /// Who caused it (`EventSource`); kept as text so a file from a newer writer still reads.
    public var source: EventSource
    /// The id of the command-channel line this event answers (1.3; nil otherwise).
    public var commandId: String? = nil
    public var message: String
    /// Kind `verdict` only.
    public var verdict: VerdictInfo? = nil
    /// Kind `rollback` only.
    public var rollback: RollbackInfo? = nil

    public init(step: Int, t: Double, kind: Kind, axis: ScaleAxis? = nil, band: Int? = nil,
                layer: Int? = nil, oldValue: Double? = nil, newValue: Double? = nil,
                source: EventSource, message: String = "") {
        self.step = step
        self.t = t
        self.kind = kind
        self.axis = axis
        self.band = band
        self.layer = layer
        self.oldValue = oldValue
        self.newValue = newValue
        self.source = source
        self.message = message
    }
}

/// A checkpoint was written.
public struct CheckpointRecord: Sendable, Equatable {
    public var step: Int
    public var t: Double
    public var path: String
    public var bytes: Int
    public var milliseconds: Double

    public init(step: Int, t: Double, path: String, bytes: Int, milliseconds: Double) {
        self.step = step
        self.t = t
        self.path = path
        self.bytes = bytes
        self.milliseconds = milliseconds
    }
}

/// The last record of a run.
public struct EndRecord: Sendable, Equatable {
    public enum Reason: String, Sendable {
        /// All planned steps ran.
        case completed
        /// The user quit (key q) or sent Ctrl-C / SIGTERM.
        case interrupted
        /// Training failed; `failure` says how, `message` why.
        case failed
    }

    /// How a failed run failed (schema 1.3, the member `failure`). A reader takes a kind it does
    /// not know as `error`.
    public enum Failure: String, Sendable, CaseIterable {
        /// The divergence guard ended the run (`--on-divergence stop`, or too many rollbacks).
        case diverged
        /// The training loss stopped being finite (the guard off).
        case nonFinite = "non_finite"
        /// Anything else: the machine, not the training (a checkpoint that could not be written).
        case error

        /// Whether training itself went wrong, as opposed to the machine: a study keeps such a run
        /// as an outcome and reruns the others.
        public var isTraining: Bool { self != .error }
    }

    public var step: Int
    public var t: Double
    public var reason: Reason
    public var finalLoss: Double?
    public var bestValidationLoss: Double?
    public var message: String
    /// Set when `reason` is `failed` (files before schema 1.3: nil; their `message` alone says).
    public var failure: Failure?

    public init(step: Int, t: Double, reason: Reason, finalLoss: Double?, bestValidationLoss: Double?,
                message: String = "", failure: Failure? = nil) {
        self.step = step
        self.t = t
        self.reason = reason
        self.finalLoss = finalLoss
        self.bestValidationLoss = bestValidationLoss
        self.message = message
        self.failure = failure
    }
}

/// Figures of the writing process, recorded at a low rate (1.3): what a user checks first when a
/// run is slow or a machine is full.
public struct SystemRecord: Sendable, Equatable {
    /// Seconds between a trainer's system records (both trainers' default): a running or paused
    /// trainer adds a record to its file at least this often.
    public static let interval = 5.0

    public var step: Int
    public var t: Double
    /// CPU time over the interval since the previous record, in % of one core.
    public var cpuPercent: Double
    /// Resident memory of the writing process, bytes.
    public var residentBytes: Int
    public var threads: Int
    public var ranks: Int
    /// A PyTorch run on a GPU: memory allocated there, and its utilisation where torch reports it.
    public var gpuMemoryBytes: Int?
    public var gpuUtilPercent: Double?

    public init(step: Int, t: Double, cpuPercent: Double, residentBytes: Int, threads: Int, ranks: Int,
                gpuMemoryBytes: Int? = nil, gpuUtilPercent: Double? = nil) {
        self.step = step
        self.t = t
        self.cpuPercent = cpuPercent
        self.residentBytes = residentBytes
        self.threads = threads
        self.ranks = ranks
        self.gpuMemoryBytes = gpuMemoryBytes
        self.gpuUtilPercent = gpuUtilPercent
    }
}

/// Any record after the header.
public enum Record: Sendable, Equatable {
    case step(StepRecord)
    case eval(EvalRecord)
    case event(EventRecord)
    case checkpoint(CheckpointRecord)
    case end(EndRecord)
    case system(SystemRecord)

    public var step: Int {
        switch self {
        case let .step(r): return r.step
        case let .eval(r): return r.step
        case let .event(r): return r.step
        case let .checkpoint(r): return r.step
        case let .end(r): return r.step
        case let .system(r): return r.step
        }
    }

    /// Seconds since the start of the run.
    public var t: Double {
        switch self {
        case let .step(r): return r.t
        case let .eval(r): return r.t
        case let .event(r): return r.t
        case let .checkpoint(r): return r.t
        case let .end(r): return r.t
        case let .system(r): return r.t
        }
    }
}
