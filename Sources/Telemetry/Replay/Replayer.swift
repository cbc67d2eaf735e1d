import RunFormat
import Foundation

/// Plays a run file onto a `RecordBus` at the recorded pace times `speed` (0: as fast as possible).
///
/// Publishes the header, then every record in file order, waiting between records as long as the
/// recorded `t` says (divided by `speed`; a recorded gap is cut to `maxGap` seconds so that a run
/// paused for an hour does not replay as an hour of nothing). Implements `ReplayControl`: pause,
/// step once while paused, faster/slower along a 1-2-5 ladder ending in "max", and seek. A forward
/// seek publishes the records up to the target at once; a backward seek reopens the file, calls
/// `bus.restart` (observers' queues are emptied, their `generation` bumped) and fast-forwards to
/// the target, so observers rebuild their state from the start. When the file ends the bus is
/// closed and `status.finished` set; the replayer still answers seeks until `stop()`. It waits
/// for its observers rather than let the bus drop step records, so a dashboard that reads a long
/// run at full speed still folds every step into its history.
public final class Replayer: ReplayControl, @unchecked Sendable {
    public static let speedLadder: [Double] = [0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000]

    public let path: String
    public let header: RunHeader
    private let bus: RecordBus
    private let follow: Bool
    private let followPastEnd: Bool
    public let maxGap: Double
    private let condition = NSCondition()
    private var state: ReplayStatus
    private var seekTarget: Int?
    private var restartRequested = false
    private var stepOnce = false
    private var reanchor = true
    private var stopped = false
    private var thread: Thread?
    private let readerStop = StopFlag()
    private let done = DispatchSemaphore(value: 0)
    /// Called with every line the reader skips (from the replay thread).
    public var onIssue: ((ReadIssue) -> Void)?
    /// Lines skipped by the reader so far.
    public var skippedLines: Int {
        condition.lock(); defer { condition.unlock() }
        return skipped
    }
    private var skipped = 0

    /// A follower's notice that the file has stopped growing and no writer holds it
    /// (`RunFileReader.Follow.onQuiet`); set before `start`.
    public var onQuiet: ((Double) -> Void)?

    /// How the step records read while catching up are built (`RunFileReader.catchUp`).
    private let catchUp: RunFileReader.CatchUp?

    /// Opens `path` (a run file or run directory); throws what `RunFileReader` throws.
    /// `catchUp`: see `RunFileReader.catchUp` (`gradflow attach` reading a long run).
    /// `followPastEnd`: with `follow`, read on after an end record (`RunFileReader.Follow.pastEnd`).
    public init(path: String, bus: RecordBus, speed: Double = 1, follow: Bool = false, followPastEnd: Bool = false,
                maxGap: Double = 2, catchUp: RunFileReader.CatchUp? = nil) throws {
        let reader = try RunFileReader(path: path)
        self.path = reader.path
        self.header = reader.header
        self.bus = bus
        self.follow = follow
        self.followPastEnd = followPastEnd
        self.maxGap = maxGap
        self.catchUp = catchUp
        state = ReplayStatus(speed: max(0, speed), paused: false, position: 0, finished: false, generation: 0,
                             recordedSteps: RecordingExtent.lastStep(path: reader.path))
    }

    public var status: ReplayStatus {
        condition.lock(); defer { condition.unlock() }
        return state
    }

    public func perform(_ action: ReplayAction) {
        condition.lock()
        switch action {
        case .togglePause:
            state.paused.toggle()
            reanchor = true
        case .faster:
            state.speed = Replayer.faster(state.speed)
            reanchor = true
        case .slower:
            state.speed = Replayer.slower(state.speed)
            reanchor = true
        case .stepOnce:
            if state.paused { stepOnce = true }
        case let .seek(steps):
            let target = max(0, state.position + steps)
            if steps < 0 {
                restartRequested = true
            }
            seekTarget = target
        }
        condition.broadcast()
        condition.unlock()
    }

    /// The next speed up the ladder; past the top comes 0 (as fast as possible).
    public static func faster(_ speed: Double) -> Double {
        if speed == 0 { return 0 }
        return speedLadder.first { $0 > speed } ?? 0
    }

    /// The next speed down the ladder; from 0 (max) to the top of the ladder.
    public static func slower(_ speed: Double) -> Double {
        if speed == 0 { return speedLadder.last! }
        return speedLadder.last { $0 < speed } ?? speedLadder.first!
    }

    /// Starts playing on a thread of its own.
    public func start() {
        condition.lock()
        guard thread == nil else { condition.unlock(); return }
        let t = Thread { [self] in run() }
        t.name = "gradflow.replay"
        thread = t
        condition.unlock()
        t.start()
    }

    /// Stops playing (also a following reader) and closes the bus.
    public func stop() {
        readerStop.set()
        condition.lock()
        stopped = true
        condition.broadcast()
        condition.unlock()
    }

    /// Blocks until the file has been played to its end (or `stop()`).
    public func waitUntilFinished() {
        condition.lock()
        while !state.finished && !stopped { _ = condition.wait(until: Date(timeIntervalSinceNow: 0.1)) }
        condition.unlock()
    }

    private func openReader() throws -> RunFileReader {
        let reader = try RunFileReader(path: path, follow: follow ? .init(pollInterval: 0.05, stop: readerStop, pastEnd: followPastEnd,
                                                                          onQuiet: onQuiet) : nil)
        reader.catchUp = catchUp
        reader.onIssue = { [weak self] issue in
            guard let self else { return }
            self.condition.lock()
            self.skipped += 1
            self.condition.unlock()
            self.onIssue?(issue)
        }
        return reader
    }

    private func run() {
        defer {
            bus.close()
            done.signal()
        }
        guard var reader = try? openReader() else {
            finish()
            return
        }
        bus.publishHeader(header)
        var pending: Record?
        var anchorWall = Date()
        var anchorT = 0.0
        var lastT = 0.0
        while true {
            condition.lock()
            if stopped { condition.unlock(); return }
            if restartRequested && !startOver(&reader, &pending, &lastT) { return }
            let seeking = seekTarget.map { state.position < $0 } ?? false
            if !seeking { seekTarget = nil }
            if state.finished || (state.paused && !stepOnce && !seeking) {
                _ = condition.wait(until: Date(timeIntervalSinceNow: 0.1))
                condition.unlock()
                continue
            }
            let speed = state.speed
            let once = stepOnce
            if reanchor {
                reanchor = false
                anchorWall = Date()
                anchorT = lastT
            }
            condition.unlock()

            if pending == nil {
                pending = (try? reader.next()) ?? nil
                if pending == nil {
                    finish()
                    bus.close()
                    continue
                }
                // A long idle stretch of the recording (a pause, a resumed session) plays as
                // `maxGap` seconds: the records after it come that long after the one before.
                let gap = pending!.t - lastT
                if speed > 0 && gap / speed > maxGap { anchorT += gap - maxGap * speed }
            }
            let record = pending!
            if !seeking && !once && speed > 0 && !isDue(record, speed: speed, anchorWall: anchorWall, anchorT: anchorT) {
                continue
            }
            // Observers get every record: a file can wait for them, unlike a trainer.
            if !bus.waitForRoom(timeout: 0.1) { continue }
            pending = nil
            bus.publish(record)
            lastT = record.t
            condition.lock()
            state.position = record.step
            if once { stepOnce = false }
            if seeking, let target = seekTarget, record.step >= target {
                seekTarget = nil
                reanchor = true
            }
            condition.unlock()
        }
    }

    /// Starts the recording over (called with the lock held; it is held again on return true).
    /// False when the file could not be opened again: the replay is finished, the lock released.
    private func startOver(_ reader: inout RunFileReader, _ pending: inout Record?, _ lastT: inout Double) -> Bool {
        restartRequested = false
        state.generation += 1
        state.position = 0
        state.finished = false
        condition.unlock()
        guard let fresh = try? openReader() else { finish(); return false }
        reader = fresh
        pending = nil
        lastT = 0
        bus.restart(header: header)
        condition.lock()
        reanchor = true
        return true
    }

    /// Whether `record` is due at `speed` after the anchor; when it is not, waits up to 0.1 s and
    /// returns false.
    private func isDue(_ record: Record, speed: Double, anchorWall: Date, anchorT: Double) -> Bool {
        let due = anchorWall.addingTimeInterval((record.t - anchorT) / speed)
        let wait = due.timeIntervalSinceNow
        guard wait > 0 else { return true }
        condition.lock()
        _ = condition.wait(until: Date(timeIntervalSinceNow: min(wait, 0.1)))
        condition.unlock()
        return false
    }

    private func finish() {
        condition.lock()
        state.finished = true
        condition.broadcast()
        condition.unlock()
    }
}
