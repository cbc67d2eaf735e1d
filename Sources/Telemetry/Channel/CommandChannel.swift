// The command channel's file, RUNDIR/commands.jsonl: the trainer's side (create it private, read
// whole new lines) and the sender's side (append one line per command). docs/FORMAT.md, "The
// command channel".

import RunFormat
import Foundation

/// Where a run's command channel lives, and who may use it.
public enum CommandChannel {
    public static let fileName = "commands.jsonl"

    /// The channel of the run in `runDirectory`.
    public static func path(runDirectory: String) -> String {
        (runDirectory as NSString).appendingPathComponent(fileName)
    }

    /// Why a file with these mode bits must not be read (nil when only its owner may write it).
    public static func permissionProblem(mode: mode_t) -> String? {
        guard mode & (S_IWGRP | S_IWOTH) != 0 else { return nil }
        return String(format: "%@ is writable by %@ (mode %o): commands from it are not read this session; make it private (chmod 600) and resume the run to steer it",
                      fileName, mode & S_IWOTH != 0 ? "others" : "its group", mode & 0o777)
    }
}

/// One line read from the channel: its 1-based line number and what it said.
public struct ChannelReading: Sendable, Equatable {
    public var line: Int
    public var result: Result<ChannelLine, ChannelLine.Problem>
}

/// The trainer's end of the channel: creates the file (mode 0600) if it is missing and returns, at
/// each call of `poll()`, the lines completed since the last call. A last line without its newline
/// is left for a later poll; nothing is ever written to the file.
public final class CommandChannelReader {
    public let path: String
    private var fd: Int32
    /// Bytes consumed: the start of the first line not yet returned.
    private var offset: off_t = 0
    private var lineNumber = 0
    /// Set once the file was found writable by others; the reader then reads nothing more.
    public private(set) var refusal: String?
    /// The refusal not yet reported (the trainer turns it into one warning event).
    private var unreportedRefusal: String?

    /// The file's first bytes as read (up to 64), to notice a file rewritten in place.
    private var head: [UInt8] = []
    /// Notices for the run file (the file was replaced, removed or cut short), each reported once.
    private var unreportedNotices: [String] = []

    /// Opens (creating it private when missing) the channel of `runDirectory`.
    public init(runDirectory: String) throws {
        path = CommandChannel.path(runDirectory: runDirectory)
        fd = try CommandChannelReader.open(path)
    }

    private static func open(_ path: String) throws -> Int32 {
        var fd = Foundation.open(path, O_RDONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        if fd >= 0 {
            fchmod(fd, 0o600)  // whatever the umask
        } else if errno == EEXIST {
            fd = Foundation.open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)  // a FIFO must not block the open
        }
        guard fd >= 0 else {
            throw RunFileError(.io, path: path, "cannot open the command channel: \(String(cString: strerror(errno)))")
        }
        return fd
    }

    /// What happened to the file since the last poll that the run file should say (reported once).
    public func takeNotices() -> [String] {
        defer { unreportedNotices = [] }
        return unreportedNotices
    }

    /// Follows the file at `path` when it is no longer the one open (replaced, or removed and made
    /// again, by a sender or by hand) or is shorter than what was read (cut): the file is read again
    /// from its first line, since a sender writes to whatever the path names. Ids already
    /// answered are still never applied again.
    private func followPath(_ open: stat) {
        var named = stat()
        let missing = stat(path, &named) != 0
        var last: UInt8 = 10
        if missing || named.st_ino != open.st_ino || named.st_dev != open.st_dev {
            // Only to a regular file (a FIFO would block the step; a folder reads nothing).
            guard missing || named.st_mode & S_IFMT == S_IFREG, let fresh = try? CommandChannelReader.open(path) else { return }
            close(fd)
            fd = fresh
            unreportedNotices.append("\(CommandChannel.fileName) was \(missing ? "removed (a new one was made)" : "replaced (or removed and made again)"): commands are read from the new file's first line")
        } else if open.st_size < offset {
            unreportedNotices.append("\(CommandChannel.fileName) was cut short (\(open.st_size) bytes, \(offset) read): commands are read again from its first line")
        } else if offset > 0 && (readHead(count: head.count) != head
                                 || (open.st_size > offset && pread(fd, &last, 1, offset - 1) == 1 && last != 10)) {
            // Rewritten in place (`>`): its first bytes are not those read, or what was read ends
            // no line now.
            unreportedNotices.append("\(CommandChannel.fileName) was rewritten: commands are read again from its first line")
        } else {
            return
        }
        offset = 0
        lineNumber = 0
        head = []
    }

    /// The file's first `count` bytes (fewer at its end).
    private func readHead(count: Int) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        let got = bytes.withUnsafeMutableBytes { pread(fd, $0.baseAddress, count, 0) }
        return Array(bytes.prefix(Swift.max(0, got)))
    }

    deinit { close(fd) }

    /// A refusal to read the file (it is writable by others) that was not reported yet; reported once.
    public func takeRefusal() -> String? {
        defer { unreportedRefusal = nil }
        return unreportedRefusal
    }

    /// The lines completed since the last poll (an fstat and nothing else when there are none).
    public func poll() -> [ChannelReading] {
        guard refusal == nil else { return [] }
        var st = stat()
        guard fstat(fd, &st) == 0 else { return [] }
        followPath(st)
        guard fstat(fd, &st) == 0 else { return [] }
        if let problem = CommandChannel.permissionProblem(mode: st.st_mode) {
            refusal = problem
            unreportedRefusal = problem
            return []
        }
        guard st.st_size > offset else { return [] }
        let count = Int(st.st_size - offset)
        var bytes = [UInt8](repeating: 0, count: count)
        let got = bytes.withUnsafeMutableBytes { pread(fd, $0.baseAddress, count, offset) }
        guard got > 0 else { return [] }
        var out: [ChannelReading] = []
        var start = 0
        bytes.withUnsafeBufferPointer { buf in
            for i in 0..<got where buf[i] == 0x0A {
                lineNumber += 1
                let line = UnsafeBufferPointer(rebasing: buf[start..<i])
                start = i + 1
                let result: Result<ChannelLine, ChannelLine.Problem>
                do {
                    result = .success(try ChannelLine.decode(line))
                } catch let p as ChannelLine.Problem {
                    result = .failure(p)
                } catch {
                    result = .failure(ChannelLine.Problem(id: nil, message: "\(error)"))
                }
                out.append(ChannelReading(line: lineNumber, result: result))
            }
        }
        offset += off_t(start)
        if head.count < min(64, Int(offset)) { head = readHead(count: min(64, Int(offset))) }
        return out
    }
}

/// The sender's end: appends one command per line, each with a single write(2) on an `O_APPEND`
/// descriptor, so that several senders never interleave. Used by `gradflow attach`.
public final class CommandChannelWriter: CommandSink, @unchecked Sendable {
    public let path: String
    public let runId: String
    public let issuer: CommandIssuer
    private var fd: Int32
    private let lock = NSLock()

    public init(runDirectory: String, runId: String, issuer: CommandIssuer = .current) throws {
        path = CommandChannel.path(runDirectory: runDirectory)
        self.runId = runId
        self.issuer = issuer
        fd = try CommandChannelWriter.open(path)
    }

    private static func open(_ path: String) throws -> Int32 {
        let fd = Foundation.open(path, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            throw RunFileError(.io, path: path, "cannot open the command channel for writing: \(String(cString: strerror(errno)))")
        }
        return fd
    }

    /// The bytes to write for `line`: after a file that ends inside a line (a sender that died
    /// mid-write), a newline first, so the fragment is a line of its own (the trainer refuses it)
    /// and this command is not glued onto it. Reopens the path first when it names another file
    /// than the one open (replaced, or removed: the trainer reads whatever the path names).
    private func prepare(_ line: [UInt8]) -> [UInt8] {
        var open = stat(), named = stat()
        if fstat(fd, &open) == 0, stat(path, &named) != 0 || named.st_ino != open.st_ino || named.st_dev != open.st_dev,
           let fresh = try? CommandChannelWriter.open(path) {
            close(fd)
            fd = fresh
        }
        var st = stat()
        var last: UInt8 = 10
        if fstat(fd, &st) == 0, st.st_size > 0, pread(fd, &last, 1, st.st_size - 1) == 1, last != 10 {
            return [10] + line
        }
        return line
    }

    deinit { close(fd) }

    /// Appends `command` (its id must be set: the answer names it) as one line; returns why the
    /// write failed (nil when the whole line was written). A line is one write(2), retried when a
    /// signal interrupts it before anything is written; a short write (a full disk) is ended with
    /// a newline, so that the fragment is a line of its own, which the trainer refuses, and the
    /// next command is not glued onto it.
    @discardableResult
    public func send(_ command: Command) -> String? {
        precondition(command.id != nil, "a channel command needs the id its answer will name")
        let line = ChannelLine(id: command.id!, run: runId, issuer: issuer,
                               t: Date().timeIntervalSince1970, action: command.action).encoded()
        lock.lock(); defer { lock.unlock() }
        let bytes = prepare(line)
        var written: Int
        repeat { written = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) } } while written < 0 && errno == EINTR
        if written == bytes.count { return nil }
        if written < 0 { return RunFileError.system("write", path: path, errno: errno).description }
        let newline: [UInt8] = [10]
        _ = newline.withUnsafeBytes { write(fd, $0.baseAddress, 1) }
        return "\(path): short write (\(written) of \(bytes.count) bytes; the disk may be full)"
    }
}
