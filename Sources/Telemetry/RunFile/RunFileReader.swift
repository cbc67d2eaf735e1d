import RunFormat
import Foundation

/// Something wrong with one line of a run file that the reader skipped.
public struct ReadIssue: Sendable, Equatable, CustomStringConvertible {
    public enum Kind: Sendable, Equatable {
        /// The last line has no newline and does not parse: the writer was interrupted mid-line.
        case tornLastLine
        /// Any other line that is not a valid record.
        case badLine
        /// A line that a writer killed mid-line left, followed by the resumed session's first
        /// record (`resume-run`): the format's own recovery (docs/FORMAT.md), not damage. Told to
        /// `onIssue`, not counted in `issueCount`.
        case recoveredFragment
    }

    public var kind: Kind
    public var path: String
    /// 1-based line number.
    public var line: Int
    /// 1-based byte column, when known.
    public var column: Int?
    public var message: String

    public var description: String {
        let place = column.map { "\(path):\(line):\($0)" } ?? "\(path):\(line)"
        switch kind {
        case .tornLastLine: return "\(place): incomplete last line skipped (the writer was probably interrupted): \(message)"
        case .badLine: return "\(place): bad line skipped: \(message)"
        case .recoveredFragment: return "\(place): the line of a writer killed mid-line, which the resumed session follows, skipped"
        }
    }
}

/// Streams the records of a run file (docs/FORMAT.md), tolerating damage.
///
/// Reads in 4 MiB chunks, so memory does not grow with the number of records. A torn last line
/// is skipped with a notice; any other bad line is reported with its line number and reason, and
/// reading continues. Fatal problems (no such file, a run directory without run.jsonl, no read
/// permission, a first line that is not a run header, an unknown schema major version) throw a
/// `RunFileError` from `init` naming the file and line.
///
/// With `follow`, the reader reads a file another process is still writing, like `tail -f`:
/// at end of file `next()` waits (polling) for more, until the file ends with an `end` record it
/// has returned (an end record followed by a resumed session's records does not stop it; with
/// `follow.pastEnd` nor does one that is last, since a later `--resume` may add a session) or
/// `follow.stop` is set, and then returns nil.
public final class RunFileReader {
    /// How to follow a growing file.
    public struct Follow {
        public var pollInterval: Double
        public var stop: StopFlag
        /// Called once a wait at the end of the file has lasted `quietAfter` seconds while no
        /// process holds the run file's writer lock: its writer may have died, and the records
        /// waited for may never come (with the seconds waited). Again after records came back.
        public var onQuiet: ((Double) -> Void)?
        /// Seconds of waiting at the end of the file before `onQuiet` (default: `RunCatalog.liveWindow`).
        public var quietAfter: Double
        /// Whether to wait on after an end record that is the last line (`gradflow attach`: a run
        /// stopped and resumed is followed into its next session); only `stop` ends the reading.
        public var pastEnd: Bool

        public init(pollInterval: Double = 0.05, stop: StopFlag = StopFlag(), quietAfter: Double = RunCatalog.liveWindow,
                    pastEnd: Bool = false, onQuiet: ((Double) -> Void)? = nil) {
            self.pollInterval = pollInterval
            self.stop = stop
            self.quietAfter = quietAfter
            self.pastEnd = pastEnd
            self.onQuiet = onQuiet
        }
    }

    public let path: String
    public let header: RunHeader
    private let source: LineSource
    private let follow: Follow?
    private var finished = false
    /// Called for every issue as it is found (e.g. to print a notice).
    public var onIssue: ((ReadIssue) -> Void)?
    /// The first issues found (at most `maxStoredIssues`; `issueCount` counts all).
    public private(set) var issues: [ReadIssue] = []
    public private(set) var issueCount = 0
    public static let maxStoredIssues = 1000
    /// Records returned so far.
    public private(set) var recordCount = 0
    /// A follower's wait at the end of the file: since when, and whether `onQuiet` was told.
    private var waitingSince: Date?
    private var toldQuiet = false

    /// Opens `path` (a run file or a run directory) and reads its header.
    public init(path: String, follow: Follow? = nil, chunkBytes: Int = 4 << 20, maxLineBytes: Int = 64 << 20) throws {
        let file = try RunFileLocation.resolve(path)
        self.path = file
        self.follow = follow
        source = try LineSource(path: file, chunkBytes: chunkBytes, maxLineBytes: maxLineBytes)
        header = try RunFileReader.readHeader(source, path: file, follow: follow)
    }

    private static func readHeader(_ source: LineSource, path: String, follow: Follow?) throws -> RunHeader {
        while true {
            switch try source.nextLine() {
            case let .line(bytes):
                return try decodeHeader(bytes, path: path)
            case .tooLong:
                throw RunFileError(.notARunFile, path: path, line: 1, "the first line is longer than \(source.maxLineBytes) bytes; not a run header")
            case let .endOfFile(fragment):
                if let follow, !follow.stop.isSet {
                    Thread.sleep(forTimeInterval: follow.pollInterval)
                    continue
                }
                if fragment.isEmpty { throw RunFileError(.notARunFile, path: path, line: 1, "the file is empty; expected a run header line") }
                let header = try decodeHeader(fragment, path: path)
                source.consumeFragment()
                return header
            }
        }
    }

    private static func decodeHeader(_ bytes: UnsafeBufferPointer<UInt8>, path: String) throws -> RunHeader {
        do {
            return try HeaderDecoder.header(bytes)
        } catch let problem as HeaderDecoder.Problem {
            switch problem {
            case let .notARunFile(m): throw RunFileError(.notARunFile, path: path, line: 1, "not a gradflow run file: \(m)")
            case let .unsupportedSchema(m): throw RunFileError(.unsupportedSchema, path: path, line: 1, m)
            case let .invalid(m): throw RunFileError(.invalidHeader, path: path, line: 1, m)
            }
        }
    }

    /// A follower waits at the end of the file: `onQuiet` once the wait is long and no writer holds
    /// the file (checked at most every `quietAfter`, as the lock probe opens the file).
    private func noteWait(_ follow: Follow) {
        guard let onQuiet = follow.onQuiet, !toldQuiet else { return }
        let now = Date()
        guard let since = waitingSince else { waitingSince = now; return }
        let waited = now.timeIntervalSince(since)
        guard waited >= follow.quietAfter else { return }
        if RunFileWriter.isBeingWritten(path: path) {
            waitingSince = now   // a writer alive (a long evaluation, a pause): look again later
            return
        }
        toldQuiet = true
        onQuiet(waited)
    }

    /// The next record, or nil at the end (see `follow`). Throws only on a failing read(2).
    public func next() throws -> Record? {
        while !finished {
            if queueIndex < queue.count {
                let item = queue[queueIndex]
                queueIndex += 1
                switch item {
                case let .record(record):
                    return deliver(record)
                case let .issue(kind, line, column, message):
                    report(kind == .badLine && resumeRunIsNext ? .recoveredFragment : kind, line: line, column: column, message)
                }
                continue
            }
            if let fragment = try fillQueue() {
                if let follow, !follow.stop.isSet, follow.pastEnd || !(endIsLast && fragment.isEmpty) {
                    if !endIsLast { noteWait(follow) }   // an ended run is not silent
                    Thread.sleep(forTimeInterval: follow.pollInterval)
                    continue
                }
                // A complete record whose newline is missing is still a record; anything else torn.
                let line = source.lineNumber + 1
                let item = fragment.isEmpty ? nil : RunFileReader.decode(fragment, path: path, line: line, torn: true, stepDetail: stepDetail)
                source.consumeFragment()
                finished = true
                switch item {
                case let .record(record)?: return deliver(record)
                case let .issue(kind, line, column, message)?: report(kind, line: line, column: column, message)
                case nil: break
                }
            }
        }
        return nil
    }

    /// A decoded line, waiting to be handed out in file order.
    enum Decoded {
        case record(Record)
        case issue(ReadIssue.Kind, line: Int, column: Int?, String)
    }

    private var queue: [Decoded] = []
    private var queueIndex = 0
    /// The lines of the batch being decoded: views into the line source's buffer (nil for a line
    /// over the length limit), valid until it reads again.
    private var batchLines: [(bytes: UnsafeBufferPointer<UInt8>?, count: Int, line: Int)] = []
    /// Lines per batch; batches of `parallelThreshold` lines or more are decoded on two threads.
    static let batchLines = 2048
    static let batchBytes = 4 << 20
    static let parallelThreshold = 64
    /// Whether large batches may be decoded on two threads (the order of records is kept).
    public var decodesInParallel = true
    /// How much of each step record to build (the lines are fully checked, except what `catchUp`
    /// lets pass by its brackets): less for readers that need less, such as a summary
    /// (`.scalars`) or progress lines (`.noLayerArrays`).
    public var stepDetail = RecordDecoder.StepDetail.full
    /// When set, the step records of a batch that ends before the end of the file (the reader is
    /// catching up with a long file) are built as it says, all but the batch's last step record;
    /// at the end of the file, where a follower waits for the writer, every record gets `stepDetail`.
    public var catchUp: CatchUp?

    /// How a reader catching up with a long file builds its step records: most at `detail`, and
    /// every `sampleEvery`-th line at `sampleDetail`. `gradflow attach` reads a long run's history
    /// this way: the loss chart takes every step's scalars, the per-band sparklines a sample of
    /// the steps, and the per-head values only the latest step has.
    /// With `checksSkippedNumbers` false, the arrays of numbers that are not built are passed by
    /// their brackets (`JSONScanner.checksSkippedNumbers`): a bad number there goes unnoticed
    /// until a full read, such as `gradflow replay`.
    public struct CatchUp: Sendable, Equatable {
        public var detail: RecordDecoder.StepDetail
        public var sampleEvery: Int
        public var sampleDetail: RecordDecoder.StepDetail
        public var checksSkippedNumbers: Bool

        public init(detail: RecordDecoder.StepDetail, sampleEvery: Int = 1, sampleDetail: RecordDecoder.StepDetail = .full,
                    checksSkippedNumbers: Bool = true) {
            self.detail = detail
            self.sampleEvery = Swift.max(1, sampleEvery)
            self.sampleDetail = sampleDetail
            self.checksSkippedNumbers = checksSkippedNumbers
        }

        /// The detail of the line with this (1-based) number.
        func detail(line: Int) -> RecordDecoder.StepDetail {
            line % sampleEvery == 0 ? sampleDetail : detail
        }
    }

    /// Fills `queue` with the next batch; returns the end-of-file fragment when the file has no
    /// complete line left. While catching up (`catchUp`), the batch after it is read and decoded
    /// on another thread while this one is handed out, so a consumer that does work per record
    /// (the replay publishing to a dashboard) overlaps with the decoding.
    private func fillQueue() throws -> UnsafeBufferPointer<UInt8>? {
        queueIndex = 0
        let batch: Batch
        if let ahead = readingAhead {
            readingAhead = nil
            batch = try ahead.result()
        } else {
            batch = try readBatch()
        }
        queue = batch.decoded
        if catchUp != nil && batch.fragment == nil && !batch.decoded.isEmpty {
            let ahead = ReadAhead()
            readingAhead = ahead
            // The source and the batch scratch are this thread's alone until `result()` returns.
            DispatchQueue.global().async { [self] in ahead.finish { try self.readBatch() } }
        }
        return batch.fragment
    }

    /// One decoded batch, and the end-of-file fragment when the file had no complete line left.
    struct Batch {
        var decoded: [Decoded]
        var fragment: UnsafeBufferPointer<UInt8>?
    }

    /// A batch being read on another thread.
    private final class ReadAhead: @unchecked Sendable {
        private let done = DispatchSemaphore(value: 0)
        private var outcome: Result<Batch, Error>?
        func finish(_ read: () throws -> Batch) {
            outcome = Result { try read() }
            done.signal()
        }
        func result() throws -> Batch {
            done.wait()
            return try outcome!.get()
        }
    }

    private var readingAhead: ReadAhead?

    /// Reads the complete lines available now (up to a batch) and decodes them.
    private func readBatch() throws -> Batch {
        batchLines.removeAll(keepingCapacity: true)
        var fragment: UnsafeBufferPointer<UInt8>?
        var bytes = 0
        // The first line may make the source read (moving its buffer); the rest of the batch is
        // what the buffer already holds, decoded in place.
        switch try source.nextLine() {
        case let .line(view):
            batchLines.append((view, view.count, source.lineNumber))
            bytes = view.count
        case let .tooLong(n):
            batchLines.append((nil, n, source.lineNumber))
        case let .endOfFile(f):
            fragment = f
        }
        while fragment == nil && batchLines.count < RunFileReader.batchLines && bytes < RunFileReader.batchBytes,
              let view = source.bufferedLine() {
            batchLines.append((view, view.count, source.lineNumber))
            bytes += view.count
        }
        guard !batchLines.isEmpty else { return Batch(decoded: [], fragment: fragment) }
        let lines = batchLines
        let path = self.path
        let limit = source.maxLineBytes
        let detail = stepDetail
        // A batch that ended before the end of the file is history, up to its last step record.
        let catchUp = fragment == nil ? self.catchUp : nil
        var historyLines = 0
        if catchUp != nil {
            historyLines = lines.count - 1
            while historyLines > 0, let view = lines[historyLines].bytes,
                  (try? RecordDecoder.lineType(view)) != .step {
                historyLines -= 1
            }
        }
        func decodeRange(_ range: Range<Int>) -> [Decoded] {
            var out: [Decoded] = []
            out.reserveCapacity(range.count)
            for i in range {
                let l = lines[i]
                if let view = l.bytes {
                    let history = i < historyLines
                    out.append(RunFileReader.decode(view, path: path, line: l.line, torn: false,
                                                    stepDetail: history ? catchUp!.detail(line: l.line) : detail,
                                                    checksSkippedNumbers: history ? catchUp!.checksSkippedNumbers : true))
                } else {
                    out.append(.issue(.badLine, line: l.line, column: nil, "line of \(l.count) bytes exceeds the \(limit)-byte limit"))
                }
            }
            return out
        }
        if decodesInParallel && lines.count >= RunFileReader.parallelThreshold {
            let half = lines.count / 2
            var parts: [[Decoded]] = [[], []]
            parts.withUnsafeMutableBufferPointer { slots in
                let slots = slots
                DispatchQueue.concurrentPerform(iterations: 2) { k in
                    slots[k] = decodeRange(k == 0 ? 0..<half : half..<lines.count)
                }
            }
            return Batch(decoded: parts[0] + parts[1], fragment: nil)
        }
        return Batch(decoded: decodeRange(0..<lines.count), fragment: nil)
    }

    private func deliver(_ record: Record) -> Record {
        recordCount += 1
        waitingSince = nil
        toldQuiet = false
        if case .end = record { endIsLast = true } else { endIsLast = false }
        return record
    }

    /// Whether the last record handed out is an end record. A follower stops once it has read
    /// everything the file holds and that is so; an end record with records after it is a session
    /// the run was resumed from (`resume-run`), and the follower reads on.
    private var endIsLast = false

    static func decode(_ bytes: UnsafeBufferPointer<UInt8>, path: String, line: Int, torn: Bool,
                       stepDetail: RecordDecoder.StepDetail = .full, checksSkippedNumbers: Bool = true) -> Decoded {
        var content = bytes
        if let last = content.last, last == 0x0D { content = UnsafeBufferPointer(rebasing: content.dropLast()) }
        let kind: ReadIssue.Kind = torn ? .tornLastLine : .badLine
        do {
            return .record(try RecordDecoder.record(content, stepDetail: stepDetail, checksSkippedNumbers: checksSkippedNumbers))
        } catch let e as JSONSyntaxError {
            let empty = content.allSatisfy { $0 == 0x20 || $0 == 0x09 }
            return .issue(kind, line: line, column: empty ? nil : e.offset + 1, empty ? "empty line" : e.message)
        } catch {
            return .issue(kind, line: line, column: nil, "\(error)")
        }
    }

    /// Whether the next line decoded is a `resume-run` event (a bad line just before it is the
    /// fragment its session recovered from; both are in one batch unless a batch ends between them).
    private var resumeRunIsNext: Bool {
        guard queueIndex < queue.count, case let .record(.event(e)) = queue[queueIndex] else { return false }
        return e.kind == .resume_run
    }

    private func report(_ kind: ReadIssue.Kind, line: Int, column: Int?, _ message: String) {
        let issue = ReadIssue(kind: kind, path: path, line: line, column: column, message: message)
        if kind != .recoveredFragment {
            issueCount += 1
            if issues.count < RunFileReader.maxStoredIssues { issues.append(issue) }
        }
        onIssue?(issue)
    }
}

extension RunFileReader {
    /// Calls `body` with every remaining record, in file order.
    public func forEachRecord(_ body: (Record) throws -> Void) throws {
        while let record = try next() { try body(record) }
    }
}
