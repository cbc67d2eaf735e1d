import RunFormat
import Foundation

/// Opens an export's output file, refusing to replace an existing one unless `force`. `-` is
/// standard output (text exports).
public enum OutputFile {
    /// The name that means standard output.
    public static let standardOutput = "-"

    /// The problem `create` would meet with `path`, found before anything is written, so that an
    /// export of several outputs writes none when one of them cannot be written.
    public static func check(_ path: String, force: Bool) throws {
        guard path != standardOutput else { return }
        guard !path.isEmpty else { throw RunFileError(.notFound, path: path, "an output needs a file name") }
        var st = stat()
        if stat(path, &st) != 0 && errno != ENOENT {
            throw RunFileError.system("look at", path: path, errno: errno)
        }
        if stat(path, &st) == 0 {
            // Before anything opens it: opening a pipe to read what it holds would wait forever.
            guard (st.st_mode & S_IFMT) == S_IFREG else {
                throw RunFileError(.io, path: path, "is not a regular file (a folder, a pipe or a device); write to a file, or to - for standard output")
            }
            if !force { throw RunFileError(.alreadyExists, path: path, "already exists; pass --force to overwrite it") }
            if let what = runArtifact(path) {
                throw RunFileError(.alreadyExists, path: path, "is \(what); an export never replaces one, even with --force")
            }
        }
        let folder = (path as NSString).deletingLastPathComponent
        var isDirectory: ObjCBool = false
        if !folder.isEmpty && !(FileManager.default.fileExists(atPath: folder, isDirectory: &isDirectory) && isDirectory.boolValue) {
            throw RunFileError(.notFound, path: path, "its folder \(folder) does not exist")
        }
        let writable = stat(path, &st) == 0 ? access(path, W_OK) == 0 : access(folder.isEmpty ? "." : folder, W_OK | X_OK) == 0
        if !writable { throw RunFileError(.permissionDenied, path: path, "cannot be written here (permission denied)") }
    }

    static func create(_ path: String, force: Bool) throws -> FileHandle {
        // A descriptor of its own: the exporter closes what it writes to, and closing 1 itself
        // would hand that number to the next file opened (a later output would get the prints).
        if path == standardOutput { return FileHandle(fileDescriptor: dup(STDOUT_FILENO), closeOnDealloc: true) }
        try check(path, force: force)
        var flags = O_WRONLY | O_CREAT | O_CLOEXEC
        flags |= force ? O_TRUNC : O_EXCL
        let fd = open(path, flags, 0o644)
        guard fd >= 0 else {
            if errno == EEXIST {
                throw RunFileError(.alreadyExists, path: path, "already exists; pass --force to overwrite it")
            }
            throw RunFileError.system("create", path: path, errno: errno)
        }
        return FileHandle(fileDescriptor: fd, closeOnDealloc: true)
    }
}

extension OutputFile {
    /// What `path` is when it is part of a run (a run file, its command channel or a checkpoint),
    /// which `--force` must not truncate: nil for anything else or nothing there.
    static func runArtifact(_ path: String) -> String? {
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        // What the path names in the end: a link named loss.svg may point at a checkpoint.
        let name = (RunFileLocation.canonical(path) as NSString).lastPathComponent
        if name.hasSuffix(".gfck") { return "a checkpoint" }
        if name == "commands.jsonl" { return "a run's command channel" }
        guard let handle = FileHandle(forReadingAtPath: path) else { return nil }
        defer { try? handle.close() }
        let start = (try? handle.read(upToCount: 64)) ?? Data()
        return String(decoding: start, as: UTF8.self).hasPrefix(#"{"type":"header""#) ? "a run file" : nil
    }
}

/// Buffers text and writes it in large chunks.
struct ChunkedWriter {
    let handle: FileHandle
    var buffer: [UInt8] = []

    init(_ handle: FileHandle) {
        self.handle = handle
        buffer.reserveCapacity(1 << 20)
    }

    mutating func write(_ s: String) {
        buffer.append(contentsOf: s.utf8)
        if buffer.count >= 1 << 20 { flush() }
    }

    mutating func write(bytes: [UInt8]) {
        buffer.append(contentsOf: bytes)
        if buffer.count >= 1 << 20 { flush() }
    }

    mutating func flush() {
        guard !buffer.isEmpty else { return }
        handle.write(Data(buffer))
        buffer.removeAll(keepingCapacity: true)
    }
}
