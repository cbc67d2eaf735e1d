import RunFormat
import Foundation

/// Why a run file could not be opened, created, read or written. The description names the file
/// (and the line, when one is to blame) and what was expected.
public struct RunFileError: Error, Equatable, CustomStringConvertible {
    public enum Kind: Sendable, Equatable {
        case notFound
        /// A directory was given that holds no run.jsonl.
        case noRunFileInDirectory
        case permissionDenied
        /// Creating a run file where one exists (a recorder never overwrites).
        case alreadyExists
        /// The first line is not a gradflow run header.
        case notARunFile
        /// A run file of a schema major version this reader does not understand.
        case unsupportedSchema
        /// The header is a gradflow header but a member is missing or malformed.
        case invalidHeader
        /// Another process holds the run file's writer lock (it is writing the run).
        case lockedByAnotherWriter
        /// Any other failing system call.
        case io
    }

    public var kind: Kind
    public var path: String
    public var line: Int?
    public var message: String

    public init(_ kind: Kind, path: String, line: Int? = nil, _ message: String) {
        self.kind = kind
        self.path = path
        self.line = line
        self.message = message
    }

    public var description: String {
        if let line { return "\(path):\(line): \(message)" }
        return "\(path): \(message)"
    }

    /// An error for a failed system call on `path`, from errno.
    static func system(_ call: String, path: String, errno code: Int32) -> RunFileError {
        let reason = String(cString: strerror(code))
        switch code {
        case ENOENT: return RunFileError(.notFound, path: path, "no such file (\(call))")
        case EACCES, EPERM: return RunFileError(.permissionDenied, path: path, "permission denied (\(call)): \(reason)")
        case EEXIST: return RunFileError(.alreadyExists, path: path, "already exists; a recorder never overwrites a run file (resume the run to append to it, or choose another run directory)")
        default: return RunFileError(.io, path: path, "\(call) failed: \(reason)")
        }
    }
}

/// Where run files live: `RUNDIR/run.jsonl`.
public enum RunFileLocation {
    public static let fileName = "run.jsonl"

    /// `path` absolute, with `.`, `..` and symbolic links resolved, so that two spellings of one
    /// file or folder compare equal (and a link is known by what it names).
    public static func canonical(_ path: String) -> String {
        URL(fileURLWithPath: path).standardizedFileURL.resolvingSymlinksInPath().path
    }

    /// Seconds since the file at `path` was last written (its modification time), or nil when it
    /// cannot be told: how `gradflow runs` and `gradflow attach` tell a live writer from a dead one.
    public static func secondsSinceModified(_ path: String, now: Date = Date()) -> Double? {
        guard let modified = (try? FileManager.default.attributesOfItem(atPath: path))?[.modificationDate] as? Date else { return nil }
        return now.timeIntervalSince(modified)
    }

    /// The run file of the run directory `directory`: `directory/run.jsonl`.
    public static func file(in directory: String) -> String {
        (directory as NSString).appendingPathComponent(fileName)
    }

    /// The run file for a path that names either the file itself or its run directory.
    public static func resolve(_ path: String) throws -> String {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw RunFileError(.notFound, path: path, "no such run file or run directory")
        }
        guard isDirectory.boolValue else { return path }
        let file = self.file(in: path)
        guard FileManager.default.fileExists(atPath: file) else {
            throw RunFileError(.noRunFileInDirectory, path: path, "is a directory without \(fileName) (not a run directory?)")
        }
        return file
    }
    /// The run directory for a path that names either the run file or the directory.
    public static func directory(_ path: String) throws -> String {
        let dir = (try resolve(path) as NSString).deletingLastPathComponent
        return dir.isEmpty ? "." : dir
    }

}

/// A flag another thread sets to ask a blocking loop (a following reader, a replay) to stop.
public final class StopFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false

    public init() {}

    public var isSet: Bool {
        lock.lock(); defer { lock.unlock() }
        return value
    }

    public func set() {
        lock.lock()
        value = true
        lock.unlock()
    }
}
