import Foundation
import Kernels
import Model
import Refinement
import Telemetry

/// The training loop. It runs on whatever thread calls `run()`, never waits for an observer
/// (records go to the bus, which never blocks), and applies commands only at step boundaries.
public final class Trainer: @unchecked Sendable {
    public let config: TrainingConfig
    public let model: GPT
    public let commands = CommandQueue()
    public let bus: RecordBus
    /// The ranks of a data-parallel run (`SingleProcess` for one process).
    public let collective: Collective
    /// Rows of the batch this rank computes: `config.batch / collective.size`.
    let localBatch: Int
    /// Where checkpoints go (nil: none are written).
    public let runDirectory: String?

    let train: ByteDataset
    let evalDomains: [ByteDataset]
    /// The extra domains as evaluated: all of each is held out (see `asEvaluationDomain`).
    let heldOutDomains: [ByteDataset]
    /// The main run's state (its parameters are the model's own arena). `step(_:batch:)` advances it.
    var main: RunState
    /// The main run's refinement.
    var engine: RefinementEngine { main.refinement }
    /// Twin windows, scripted changes and the divergence guard (set before `run()`).
    public var interventions = InterventionSettings() {
        didSet {
            divergence = DivergenceGuard(settings: interventions.divergence)
            main.guardWindow = DivergenceRule(settings: interventions.divergence.rule)
            if let restoredGuard { divergence.restore(restoredGuard, window: &main.guardWindow) }
        }
    }
    /// The guard's state a resumed run's checkpoint held (kept when the settings are set).
    var restoredGuard: DivergenceGuard.Persistent?
    /// The twin of the last change (open window, or frozen after its verdict for a revert).
    var twin: Twin?
    var divergence = DivergenceGuard(settings: DivergenceSettings())
    /// The command channel (rank 0 of a run with a folder; `attachChannel`).
    var channel = ChannelState()
    /// Lines read while attaching that are answered at the first step boundary.
    var pendingChannelReadings: [ChannelReading] = []
    /// Figures of this process for the `system` records (rank 0; nil: none are written).
    var systemMonitor: SystemMonitor?
    /// The learning-rate schedule is multiplied by this (the guard lowers it on repeated
    /// divergence; an `lr` event records each change; checkpoints keep it).
    public internal(set) var learningRateScale = 1.0
    /// A fault injected on purpose (`gradflow train --debug-fault`, tests of the guard).
    public var fault: FaultInjection?
    /// Tests only: called before each step of `run()` (fault injection).
    var beforeStep: ((Trainer) -> Void)?
    /// Steps completed.
    public internal(set) var step = 0
    var bestValidation: Double?
    let startTime: Date
    /// Seconds of training before this process (a resumed run's clock continues).
    let timeOffset: Double
    /// When set, the phases of each step are timed (`gradflow bench --profile`).
    public var profiler: PhaseTimer? {
        didSet { model.profiler = profiler }
    }
    /// Writes the evaluation's sample; reads the parameters only, so training is unchanged.
    lazy var sampler = Generator(model: model)
    /// [batch · T] loss weights when the data source is a synthetic task (nil: plain mean loss).
    let lossMask: UnsafeMutablePointer<Float>?
    private let stopLock = NSLock()
    private var stopRequested = false
    private var paused = false

    /// Called on the training thread after every validation pass of `run()` (the study runner
    /// scores a synthetic task's bands there). It may use the model's buffers for forward passes
    /// but must not change its parameters or the data order.
    public var afterEvaluation: ((Trainer) -> Void)?

    /// Windows of attention used for the context-gain measure at eval (those shorter than T).
    public static let contextGainWindows = [8, 32, 64]

    /// Why a model of this shape cannot train here, or nil: its parameters, gradients, AdamW state
    /// and activations at `batch` windows (`GPT.trainingBytes`, a lower bound) would not fit in
    /// the machine's memory, shared by `ranksOnMachine` processes like this one. Said before
    /// anything is allocated, instead of a crash in the allocation.
    public static func memoryProblem(config: TrainingConfig, batch: Int, ranksOnMachine: Int = 1,
                                     physicalMemory: UInt64 = ProcessInfo.processInfo.physicalMemory) -> String? {
        let parameters = Double(ParameterLayout(config.model).count)
        let needed = GPT.trainingBytes(config: config.model, batch: batch, workers: config.threads) + 2 * 4 * parameters
        guard needed * Double(ranksOnMachine) > Double(physicalMemory) else { return nil }
        let amount = needed < 1e15 ? Format.bytes(Int(needed)) : "a petabyte"   // far past Int's range too
        let share = ranksOnMachine > 1 ? " for its \(ranksOnMachine) ranks" : ""
        let m = config.model
        return "the model (--layers \(m.layers) --dim \(m.channels) --context \(m.context), "
            + "\(Format.grouped(Int(parameters))) parameters) at batch \(batch) needs at least \(amount) of memory "
            + "for its parameters, gradients, AdamW state and activations; this machine has "
            + "\(Format.bytes(Int(clamping: physicalMemory)))\(share) (use a smaller --dim, --layers, --context or --batch)"
    }

    public init(config: TrainingConfig, refinement: RefinementConfig, train: ByteDataset,
                evalDomains: [ByteDataset], bus: RecordBus, runDirectory: String?,
                resume: Checkpoint? = nil, timeOffset: Double = 0, collective: Collective = SingleProcess()) throws {
        if let e = config.validationProblem() { throw DataError(e.description) }
        if let e = Self.batchSplitError(batch: config.batch, ranks: collective.size) { throw DataError(e) }
        try train.check(context: config.context)
        for d in evalDomains {
            if d.totalBytes < config.context + 1 {
                throw DataError("\(d.path): has \(d.totalBytes) bytes; context \(config.context) needs at least \(config.context + 1)")
            }
        }
        self.config = config
        self.train = train
        self.evalDomains = evalDomains
        heldOutDomains = evalDomains.map { $0.asEvaluationDomain() }
        self.bus = bus
        self.runDirectory = runDirectory
        self.collective = collective
        localBatch = config.batch / collective.size
        if let e = Self.memoryProblem(config: config, batch: localBatch) { throw DataError(e) }
        model = GPT(config: config.model, batch: localBatch, seed: config.initSeed, parallel: Parallel(threads: config.threads))
        let setup = try refinement.resolve(window: config.context, layers: config.model.layers)
        main = RunState(params: ParameterArena(of: model), optimizer: AdamW(config: config.adam, count: model.layout.count),
                        refinement: try RefinementEngine(setup: setup, layout: model.layout, heads: config.model.heads,
                                                         totalSteps: config.steps, context: config.context),
                        guardWindow: DivergenceRule(settings: DivergenceSettings().rule),
                        data: Xoshiro256(seed: config.dataSeed), lastLoss: nil)
        lossMask = train.needsLossMask ? .allocate(capacity: localBatch * config.context) : nil
        startTime = Date()
        self.timeOffset = timeOffset
        if let resume {
            do { try restore(resume) } catch let e as CheckpointError {
                throw resume.path.map { CheckpointError("\($0): \(e)") } ?? e
            }
        }
    }

    deinit { lossMask?.deallocate() }

    /// Asks the loop to stop at the end of the current step (safe from any thread or a signal
    /// handler's polling thread).
    public func requestStop(source: EventSource = .signal) {
        // The command before the flag: a boundary that reads the flag before it drains the queue
        // (handleCommands) then always finds the command, and records the stop with its source.
        commands.send(.stop(source: source))
        stopLock.lock()
        stopRequested = true
        stopLock.unlock()
    }

    var shouldStop: Bool {
        stopLock.lock(); defer { stopLock.unlock() }
        return stopRequested
    }

    var elapsed: Double { timeOffset + Date().timeIntervalSince(startTime) }

    /// The run header this trainer describes itself with.
    public func header(runName: String) -> RunHeader {
        var data = [DataSourceInfo(name: DataSourceInfo.trainingPrefix + train.name, path: train.path, bytes: train.totalBytes, hash: train.hash)]
        for d in evalDomains { data.append(DataSourceInfo(name: d.name, path: d.path, bytes: d.totalBytes, hash: d.hash)) }
        return RunHeader(runName: runName, config: configJSON(), axes: engine.axisInfo(), seed: config.initSeed,
                         data: data, startTime: startTime.timeIntervalSince1970 - timeOffset,
                         threads: config.threads, parameters: model.layout.count, totalSteps: config.steps,
                         preset: config.preset, ranks: collective.size)
    }

    /// Runs until the planned steps are done or a stop is requested; returns the end record
    /// (also published). Checkpoints at the configured interval and at the end.
    @discardableResult
    public func run() -> EndRecord {
        var reason = EndRecord.Reason.completed
        var failure: EndRecord.Failure?
        var message = ""
        do {
            while step < config.steps {
                if try handleCommands() { reason = .interrupted; break }
                snapshotIfDue()
                beforeStep?(self)
                let result = step(&main, batch: .next)
                var record = result.record
                let (healthy, warning) = try guardStep(result)
                if healthy {
                    stepTwin(&record)
                    bus.publish(.step(record))
                }
                if let warning {
                    bus.publish(.event(EventRecord(step: record.step, t: record.t, kind: .warning, source: .divergenceGuard, message: warning)))
                }
                step += 1
                if healthy && !record.loss.isFinite {
                    reason = .failed
                    failure = .nonFinite
                    message = "\(TrainingFailure.nonFinite)\(record.loss) at step \(record.step)"
                    break
                }
                closeTwinIfDone()
                if healthy && engine.adaptiveWarmupEnds(at: step - 1) {
                    bus.publish(.event(EventRecord(step: step, t: elapsed, kind: .adaptive, source: .policy,
                                                   message: "adaptive weights in force (warm-up done)")))
                }
                let last = step == config.steps
                if (config.evalEvery > 0 && step % config.evalEvery == 0) || last {
                    bus.publish(.eval(evaluate()))
                    afterEvaluation?(self)
                }
                if config.checkpointEvery > 0 && step % config.checkpointEvery == 0 && !last {
                    try saveCheckpoint()
                }
            }
            closeTwin(partial: true)
            if runDirectory != nil { try saveCheckpoint() }
        } catch {
            reason = .failed
            failure = error is DivergenceStop ? .diverged : .error
            message = "\(error)"
        }
        let end = EndRecord(step: step, t: elapsed, reason: reason, finalLoss: main.lastLoss,
                            bestValidationLoss: bestValidation, message: message, failure: failure)
        bus.publish(.end(end))
        return end
    }

    // MARK: - One step

    /// Where a step's batch comes from.
    enum Batch: Equatable {
        /// The next batch, drawn with the state's data cursor (a fault injected on purpose, the
        /// hidden `--debug-fault`, applies to it).
        case next
        /// The batch already in the model's inputs: a twin's step, on the batch its main run just used.
        case current
    }

    /// What one step did.
    struct StepResult {
        var record: StepRecord
        /// `--on-divergence skip` dropped the batch after the forward pass: no backward pass and
        /// no update were taken (the state moved its data cursor only). The guard reads it.
        var skipped = false
    }

    /// One full training step of the main run (forward, backward, refinement, AdamW) without
    /// publishing; the benchmark times this.
    public func trainStep() -> StepRecord { step(&main, batch: .next).record }

    /// One training step of `s` on `batch`, at the run's step counter (its learning rate):
    /// forward, backward, refinement, AdamW. It writes `s` and the model's scratch (activations,
    /// gradients, inputs) and nothing else of the trainer, so the main run and its twin go through
    /// it alike (docs/ARCHITECTURE.md §2).
    func step(_ s: inout RunState, batch: Batch) -> StepResult {
        let t0 = Date()
        let B = config.batch, T = config.context
        let lr = fault?.learningRate(learningRate(at: step), step: step) ?? learningRate(at: step)
        let refinement = s.refinement, optimizer = s.optimizer, params = s.params.pointer
        refinement.beginStep()
        if batch == .next {
            timed(profiler, "data") {
                train.fillTrainingBatch(inputs: model.inputs, targets: model.targets, mask: lossMask, B: B, T: T,
                                        rows: batchRows, rng: &s.data)
            }
            fault?.corruptBatch(model.inputs, model.targets, count: localBatch * T, step: step)
        }
        var loss = Double(model.forward(parameters: params, T: T, lossMask: lossMask.map { UnsafePointer($0) },
                                        bands: refinement.bands, attentionMass: refinement.mass))
        // With `--on-divergence skip` a loss the guard's rule calls a divergence drops the batch
        // before backward (other policies pay no collective vote per step). Every rank skips or
        // none does: a spike on any rank's share skips the whole batch.
        if batch == .next && divergence.settings.policy == .skip
            && collective.agreeToStop(s.guardWindow.divergence(loss: loss, gradNorm: 0) != nil) {
            let record = StepRecord(step: step, t: elapsed, loss: loss, learningRate: lr, gradNorm: 0, clipScale: 1,
                                    tokensPerSecond: 0, stepMilliseconds: Date().timeIntervalSince(t0) * 1000)
            return StepResult(record: record, skipped: true)
        }
        // Data-parallel: the gradient averaged over the ranks, in buckets during the backward pass
        // (one process: the plain backward pass).
        let share = backwardAveragingGradient(refinement)
        // A fault injected on purpose (guard tests) corrupts the gradient the update will use.
        if batch == .next { fault?.corruptGradient(model.grads, step: step) }
        let timeStats = timed(profiler, "refine.time") { refinement.refineTime(grads: model.grads, workers: model.parallel.workers) }
        // Global norm of the gradient that reaches the optimizer, and the clip factor.
        let norm = timed(profiler, "grad-norm") { VectorOps.norm(model.grads, count: model.layout.count) }
        let clip = config.clip > 0 && norm > config.clip ? Float(config.clip / norm) : 1
        optimizer.beginStep()
        let perTensor = timed(profiler, "adamw") {
            model.layout.tensors.enumerated().map { i, t in
                optimizer.update(params: params, grads: model.grads, offset: t.offset,
                                 count: t.count, lr: Float(lr) * refinement.depthMultiplier(tensor: i),
                                 decays: t.decays, gradScale: clip, parallel: model.parallel)
            }
        }
        loss = reduceStatistics(loss: loss, share: share, refinement)
        let fields = timed(profiler, "statistics") {
            refinement.finishStep(step: step, loss: loss, perTensor: perTensor,
                                  time: timeStats, tokensPerBatch: B * T)
        }
        let seconds = Date().timeIntervalSince(t0)
        s.lastLoss = loss
        let record = StepRecord(step: step, t: elapsed, loss: loss, learningRate: lr, gradNorm: norm,
                                clipScale: Double(clip), tokensPerSecond: Double(B * T) / max(seconds, 1e-9),
                                stepMilliseconds: seconds * 1000, axes: fields.axes,
                                contextEnergyByLayer: fields.energyByLayer, attentionMass: fields.mass,
                                attentionMassByHead: fields.massByHead, oscillation: fields.oscillation,
                                spike: fields.spike, guardFallbacks: refinement.guardFallbacks)
        return StepResult(record: record)
    }

    // MARK: - Commands

    /// Applies queued commands; returns true when the run should stop (a stop command, or a stop
    /// that any rank asked for: the step boundary's vote).
    private func handleCommands() throws -> Bool {
        // Scheduled changes (--change, --schedule) are rank 0's commands like any other.
        publishSystemFigures()
        // The stop flag before the queue (requestStop sets it after queueing its command): a stop
        // seen here has its command among those drained, so its event is written.
        var stop = shouldStop
        var (pending, stopVoted) = collective.boundary(
            commands: interventions.scheduled.filter { $0.step == step }.map(\.command) + commands.drain() + channelCommands(),
            stop: stop)
        while true {
            for c in pending {
                switch c.action {
                case .stop:
                    publish(answering: c, EventRecord(step: step, t: elapsed, kind: .stop, source: c.source, message: ""))
                    return true
                case .pause:
                    publish(answering: c, EventRecord(step: step, t: elapsed, kind: paused ? .command : .pause, source: c.source,
                                                      message: paused ? "already paused" : ""))
                    paused = true
                case .resume:
                    publish(answering: c, EventRecord(step: step, t: elapsed, kind: paused ? .resume : .command, source: c.source,
                                                      message: paused ? "" : "not paused"))
                    paused = false
                case .checkpointNow:
                    if runDirectory != nil {
                        try saveCheckpoint()
                        publish(answering: c, EventRecord(step: step, t: elapsed, kind: .command, source: c.source, message: "checkpoint written"))
                    } else {
                        publish(answering: c, EventRecord(step: step, t: elapsed, kind: .refused, source: c.source, message: "this run writes no checkpoints"))
                    }
                case let .scaleLearningRate(factor):
                    scaleLearningRate(factor, answering: c)
                case .openTwin:
                    openAATwin(answering: c)
                case .revert:
                    revertToTwin(answering: c)
                default:
                    applyChange(c)
                }
            }
            if stopVoted { return true }
            guard paused else { return false }
            publishSystemFigures()
            stop = shouldStop
            (pending, stopVoted) = collective.boundary(commands: commands.wait(timeout: 0.1) + channelCommands(), stop: stop)
        }
    }

    // MARK: - Evaluation

    /// Validation loss per domain, loss by position and context gain ΔL(c) on the first domain.
    public func evaluate() -> EvalRecord {
        let T = config.context
        var domains: [DomainEval] = []
        var byPosition: [Double] = []
        var gains: [ContextGain] = []
        for (k, (name, d)) in validationSets.enumerated() {
            let split = d
            let full = validationLoss(split, T: T, window: nil, collectPositions: k == 0)
            domains.append(DomainEval(name: name, loss: full.loss))
            if k == 0 {
                byPosition = full.byPosition
                for c in Self.contextGainWindows where c < T {
                    let windowed = validationLoss(split, T: T, window: c, collectPositions: false)
                    gains.append(ContextGain(window: c, delta: windowed.loss - full.loss))
                }
            }
        }
        if let first = domains.first?.loss, bestValidation.map({ first < $0 }) ?? true { bestValidation = first }
        let text = sampler.generate(prompt: Array(Self.evalSample.prompt.utf8), count: Self.evalSample.bytes,
                                    options: Self.evalSample.options)
        return EvalRecord(step: step, t: elapsed, domains: domains, lossByPosition: byPosition, contextGain: gains,
                          samplePrompt: Self.evalSample.prompt, sample: String(decoding: text, as: UTF8.self))
    }

    /// The sample written at each evaluation (run file `sample`, the dashboard's Samples panel):
    /// a fixed prompt and seed, so successive samples show what training changed.
    public static let evalSample = (prompt: "\n", bytes: 160, options: SamplingOptions(temperature: 0.8, seed: 1))

    /// The validation loss of `d` (and its loss by position), with the main run's parameters or
    /// those of another state (`parameters`: a twin's).
    func validationLoss(_ d: ByteDataset, T: Int, window: Int?, collectPositions: Bool,
                        parameters: UnsafePointer<Float>? = nil) -> (loss: Double, byPosition: [Double]) {
        let B = localBatch
        let n = max(1, d.validationWindowCount(T: T, limit: config.evalWindows))
        var total = 0.0, rows = 0
        var positions = [Double](repeating: 0, count: T)
        var first = 0
        // A synthetic task scores answers only: losses are weighted by its mask.
        let mask = d.needsLossMask ? lossMask : nil
        var weight = 0.0, positionWeight = [Double](repeating: 0, count: T)
        // Under several ranks, rank r evaluates the batches k with k % ranks == r; the sums are reduced.
        var k = 0
        while first < n {
            defer { first += B; k += 1 }
            guard k % collective.size == collective.rank else { continue }
            let real = d.fillValidationBatch(inputs: model.inputs, targets: model.targets, mask: mask,
                                             first: first, count: n, B: B, T: T)
            model.forward(parameters: parameters, T: T, window: window)
            let losses = model.losses
            for b in 0..<real {
                for t in 0..<T {
                    let l = Double(losses[b * T + t])
                    if let mask {
                        let m = Double(mask[b * T + t])
                        total += l * m
                        positions[t] += l * m
                        positionWeight[t] += m
                        weight += m
                    } else {
                        total += l
                        positions[t] += l
                    }
                }
            }
            rows += real * T
        }
        if collective.size > 1 {
            let sums = collective.sum([total, weight, Double(rows)] + positions + positionWeight)
            total = sums[0]; weight = sums[1]; rows = Int(sums[2])
            positions = Array(sums[3..<(3 + T)]); positionWeight = Array(sums[(3 + T)...])
        }
        if mask != nil {
            // Mean over answers; positions without answers report 0.
            for t in 0..<T { positions[t] = positionWeight[t] > 0 ? positions[t] / positionWeight[t] * Double(n) : 0 }
            return (weight > 0 ? total / weight : 0, Self.buckets(positions, T: T, n: n, collect: collectPositions))
        }
        return (total / Double(max(rows, 1)), Self.buckets(positions, T: T, n: n, collect: collectPositions))
    }

    /// Loss by position (sums over n windows) reduced to at most 32 bucket means.
    static func buckets(_ positions: [Double], T: Int, n: Int, collect: Bool) -> [Double] {
        var buckets: [Double] = []
        if collect {
            let k = min(32, T)
            for i in 0..<k {
                let lo = i * T / k, hi = (i + 1) * T / k
                buckets.append(positions[lo..<hi].reduce(0, +) / Double((hi - lo) * n))
            }
        }
        return buckets
    }
}

extension ByteDataset {
    /// An extra evaluation domain is used whole: it is never trained on, so its "validation"
    /// is all of it (still read as non-overlapping windows from the start).
    func asEvaluationDomain() -> ByteDataset {
        var d = self
        d.validation = train + validation
        d.train = ByteView()
        return d
    }
}

extension Trainer {
    /// Advances the step counter after a `trainStep()` the caller ran itself (benchmarks).
    public func advance() { step += 1 }
}
