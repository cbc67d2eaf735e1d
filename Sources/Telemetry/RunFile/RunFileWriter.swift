import RunFormat
import Foundation

/// Appends records to a run file, synchronously, one whole line per write(2).
///
/// The file is opened with O_APPEND, so every line lands at the end in one piece: a process killed
/// at any moment leaves the file readable up to its last complete line. There is no user-space
/// buffer (each record reaches the kernel when `append` returns); `sync()` adds fsync for
/// durability against a machine crash, which `RunRecorder` calls at least once a second and at
/// every checkpoint and end record. A writer never truncates: `create` refuses an existing file
/// (O_CREAT|O_EXCL) and `openForAppend` continues an existing one. A writer holds an exclusive
/// `flock` on the file while it is open, so a second process resuming the same run is refused
/// rather than interleaving its records with the first's (the Python writer takes the same lock).
/// Not thread-safe: one thread writes (the recorder's).
public final class RunFileWriter {
    public let path: String
    private var fd: Int32
    private var encoder = RecordEncoder()
    /// Lines written by this writer (the header included).
    public private(set) var linesWritten = 0
    /// Bytes written by this writer.
    public private(set) var bytesWritten = 0

    private init(path: String, fd: Int32) {
        self.path = path
        self.fd = fd
    }

    deinit {
        if fd >= 0 { Foundation.close(fd) }
    }

    /// Creates a new run file holding `header`'s line. Throws `.alreadyExists` when the file exists.
    public static func create(path: String, header: RunHeader) throws -> RunFileWriter {
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw RunFileError.system("create", path: path, errno: errno) }
        try lockForWriting(fd, path: path)
        let writer = RunFileWriter(path: path, fd: fd)
        try writer.writeLine(writer.encoder.encode(header))
        try writer.sync()
        return writer
    }

    /// Opens an existing run file to append to (a resumed run), after checking its header.
    /// If the file ends inside a line (the previous process died mid-write), a newline is written
    /// first so that the torn fragment stays a line of its own, which readers report and skip.
    public static func openForAppend(path: String) throws -> (writer: RunFileWriter, header: RunHeader) {
        let header = try RunFileReader(path: path).header
        let fd = open(path, O_RDWR | O_APPEND | O_CLOEXEC)
        guard fd >= 0 else { throw RunFileError.system("open for append", path: path, errno: errno) }
        try lockForWriting(fd, path: path)
        let writer = RunFileWriter(path: path, fd: fd)
        let size = lseek(fd, 0, SEEK_END)
        if size > 0 {
            var last: UInt8 = 0
            if pread(fd, &last, 1, size - 1) == 1, last != 0x0A {
                try writer.writeBytes([0x0A])
            }
        }
        return (writer, header)
    }

    /// Takes the writer lock on `fd` (held until it closes); closes `fd` and throws when another
    /// process holds it. A filesystem without locks is written unlocked, as before.
    private static func lockForWriting(_ fd: Int32, path: String) throws {
        guard flock(fd, LOCK_EX | LOCK_NB) != 0 else { return }
        let code = errno
        guard code == EWOULDBLOCK else { return }
        Foundation.close(fd)
        throw RunFileError(.lockedByAnotherWriter, path: path, lockedMessage)
    }

    /// Why a run file cannot be written now (the Python writer says the same).
    public static let lockedMessage = "this run file is locked by a process writing the run (or one it forked); stop it first, or attach to it to steer it"

    /// Whether another process holds the writer lock of the run file at `path` now (false when
    /// the file cannot be opened or the filesystem has no locks).
    public static func isBeingWritten(path: String) -> Bool {
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)   // a pipe there must not be waited on
        guard fd >= 0 else { return false }
        defer { Foundation.close(fd) }
        guard flock(fd, LOCK_EX | LOCK_NB) != 0 else {
            _ = flock(fd, LOCK_UN)
            return false
        }
        return errno == EWOULDBLOCK
    }

    /// Writes one record as one line.
    public func append(_ record: Record) throws {
        try writeLine(encoder.encode(record))
    }

    private func writeLine(_ line: [UInt8]) throws {
        try writeBytes(line)
        linesWritten += 1
    }

    private func writeBytes(_ bytes: [UInt8]) throws {
        guard fd >= 0 else { throw RunFileError(.io, path: path, "write after close") }
        try bytes.withUnsafeBytes { raw in
            var offset = 0
            while offset < raw.count {
                let n = write(fd, raw.baseAddress! + offset, raw.count - offset)
                if n < 0 {
                    if errno == EINTR { continue }
                    throw RunFileError.system("write", path: path, errno: errno)
                }
                offset += n
            }
        }
        bytesWritten += bytes.count
    }

    /// Forces what was written to stable storage (fsync).
    public func sync() throws {
        guard fd >= 0 else { return }
        if fsync(fd) != 0 { throw RunFileError.system("fsync", path: path, errno: errno) }
    }

    /// Syncs and closes. Further appends throw.
    public func close() throws {
        guard fd >= 0 else { return }
        defer {
            Foundation.close(fd)
            fd = -1
        }
        try sync()
    }
}
