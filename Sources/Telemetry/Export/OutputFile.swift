import RunFormat
import Foundation

/// Opens an export's output file, refusing to replace an existing one unless `force`.
enum OutputFile {
    static func create(_ path: String, force: Bool) throws -> FileHandle {
        if force, let what = runArtifact(path) {
            throw RunFileError(.alreadyExists, path: path, "is \(what); an export never replaces one, even with --force")
        }
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
        let name = (path as NSString).lastPathComponent
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
