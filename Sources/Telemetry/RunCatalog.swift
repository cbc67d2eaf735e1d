import RunFormat
import Foundation

/// The runs in a folder (`gradflow runs`): one entry per subfolder, read without ever failing on
/// a damaged or foreign one.
public enum RunCatalog {
    /// What a folder holds.
    public enum State: String, Sendable, CaseIterable {
        /// The run file ends with a `completed` end record.
        case finished
        /// Stopped by q, Ctrl-C or a kill: an `interrupted` end record, or none and no recent write.
        case interrupted
        /// An end record says training failed.
        case failed
        /// No end record, and the run file was written to within `liveWindow` seconds or its writer
        /// holds its lock.
        case live
        /// A run file whose header cannot be read, or with bad lines other than a torn last one.
        case damaged
        /// No run file: not a gradflow run folder.
        case notARun = "not a run"
    }

    /// One folder's line.
    public struct Entry: Sendable {
        public var name: String
        public var path: String
        public var state: State
        public var preset: String?
        public var stepsDone: Int?
        public var totalSteps: Int?
        public var finalValidation: Double?
        public var bestValidation: Double?
        /// Seconds since 1970.
        public var startTime: Double?
        public var parent: RunParent?
        /// Why a folder is damaged, or how many bad lines were skipped.
        public var note: String?
    }

    /// A run file without an end record counts as live while it was modified this recently (also
    /// `gradflow attach`'s default for calling a run silent).
    public static let liveWindow = 60.0

    /// Every subfolder of `directory`, sorted by name. Throws only when `directory` itself cannot
    /// be listed (the message names it).
    public static func scan(_ directory: String, now: Date = Date()) throws -> [Entry] {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory) else {
            throw RunFileError(.notFound, path: directory, "no such folder of runs")
        }
        guard isDirectory.boolValue else {
            throw RunFileError(.notFound, path: directory, "is a file, not a folder of runs (give the folder that holds the run folders)")
        }
        // A run folder itself: that one run.
        if FileManager.default.fileExists(atPath: RunFileLocation.file(in: directory)) {
            let name = (URL(fileURLWithPath: directory).standardizedFileURL.path as NSString).lastPathComponent
            return [entry(name: name, path: directory, now: now)]
        }
        let names: [String]
        do { names = try FileManager.default.contentsOfDirectory(atPath: directory) } catch {
            throw RunFileError(.notFound, path: directory, "cannot be listed (\(error.localizedDescription))")
        }
        var entries: [Entry] = []
        for name in names.sorted() where !name.hasPrefix(".") {
            let path = (directory as NSString).appendingPathComponent(name)
            var dir: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &dir), dir.boolValue else { continue }
            entries.append(entry(name: name, path: path, now: now))
        }
        return entries
    }

    /// One folder: reads its run file's header and records (scalars only).
    public static func entry(name: String, path: String, now: Date = Date()) -> Entry {
        var e = Entry(name: name, path: path, state: .notARun)
        let file = RunFileLocation.file(in: path)
        guard FileManager.default.fileExists(atPath: file) else { return e }
        var badLines = 0
        var summary: RunSummary
        do {
            let reader = try RunFileReader(path: file)
            reader.stepDetail = .scalars
            // A fragment that a resumed session follows is the format's own recovery
            // (`ReadIssue.Kind.recoveredFragment`), not damage.
            reader.onIssue = { issue in if issue.kind == .badLine { badLines += 1 } }
            summary = RunSummary(header: reader.header)
            while let record = try reader.next() { summary.add(record) }
        } catch let error as RunFileError {
            e.state = .damaged
            e.note = error.message
            return e
        } catch {
            e.state = .damaged
            e.note = "\(error)"
            return e
        }
        let h = summary.header
        e.preset = h?.preset
        e.totalSteps = h?.totalSteps
        e.startTime = h?.startTime
        e.parent = h?.parent
        e.stepsDone = summary.stepsDone
        e.finalValidation = summary.lastEval?.domains.first?.loss
        e.bestValidation = summary.bestValidation?.loss
        switch summary.end?.reason {
        case .completed?: e.state = .finished
        case .interrupted?: e.state = .interrupted
        case .failed?: e.state = .failed; e.note = summary.end?.message
        case nil:
            // Written to lately, or its writer still holds the file's lock (a long evaluation or
            // checkpoint writes nothing for a while, but the process is there).
            let recent = RunFileLocation.secondsSinceModified(file, now: now).map { $0 < liveWindow } ?? false
            e.state = recent || RunFileWriter.isBeingWritten(path: file) ? .live : .interrupted
        }
        if badLines > 0 {
            e.state = .damaged
            e.note = "\(badLines) bad line\(badLines == 1 ? "" : "s") skipped"
        }
        return e
    }
}
