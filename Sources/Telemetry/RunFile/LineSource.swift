import RunFormat
import Foundation

/// Reads a file line by line in fixed-size chunks (constant memory however long the file is).
///
/// `nextLine` hands out a view of the line inside the internal buffer, valid until the next call.
/// A line longer than `maxLineBytes` is not kept: it is reported as `.tooLong` and skipped.
/// In follow mode, end of file is not the end: `nextLine` returns `.waiting` and the caller polls.
final class LineSource {
    enum Next {
        /// A complete line (without its newline).
        case line(UnsafeBufferPointer<UInt8>)
        /// At end of file: the bytes after the last newline (possibly empty when `final`), which are
        /// a torn line unless the writer simply has not finished it yet.
        case endOfFile(fragment: UnsafeBufferPointer<UInt8>)
        /// A line longer than the limit was skipped; `bytes` is its length.
        case tooLong(bytes: Int)
    }

    let path: String
    private let fd: Int32
    private var buffer: UnsafeMutablePointer<UInt8>
    private var capacity: Int
    private var start = 0       // first byte of the current line
    private var scanned = 0     // bytes from start already known to hold no newline
    private var filled = 0
    private var discarding = 0  // > 0 while skipping an over-long line: bytes skipped so far
    let maxLineBytes: Int
    /// Number of complete lines handed out or skipped (the 1-based number of the last one).
    private(set) var lineNumber = 0

    init(path: String, chunkBytes: Int = 1 << 20, maxLineBytes: Int = 64 << 20) throws {
        self.path = path
        // Non-blocking, so that a pipe in the run file's place is refused instead of waited on.
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
        guard fd >= 0 else { throw RunFileError.system("open", path: path, errno: errno) }
        var st = stat()
        guard fstat(fd, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else {
            close(fd)
            throw RunFileError(.io, path: path, "is not a regular file (a pipe, a device or a folder), so not a run file "
                               + "(a run file is read as a file, more than once: save a piped or compressed one to a file first)")
        }
        self.fd = fd
        self.capacity = max(16, chunkBytes)
        self.maxLineBytes = max(capacity, maxLineBytes)
        self.buffer = .allocate(capacity: capacity)
    }

    deinit {
        close(fd)
        buffer.deallocate()
    }

    func nextLine() throws -> Next {
        while true {
            if filled > start + scanned,
               let hit = memchr(buffer + start + scanned, 0x0A, filled - start - scanned) {
                let nl = hit.assumingMemoryBound(to: UInt8.self) - buffer
                let lineStart = start
                start = nl + 1
                scanned = 0
                lineNumber += 1
                if discarding > 0 {
                    let skipped = discarding + (nl - lineStart)
                    discarding = 0
                    return .tooLong(bytes: skipped)
                }
                return .line(UnsafeBufferPointer(start: buffer + lineStart, count: nl - lineStart))
            }
            scanned = filled - start
            if discarding > 0 || scanned >= maxLineBytes {
                // Drop what we have of an over-long line and keep looking for its end.
                discarding += scanned
                start = 0
                filled = 0
                scanned = 0
            } else if start > 0 {
                // Move the partial line to the front.
                if filled > start { memmove(buffer, buffer + start, filled - start) }
                filled -= start
                start = 0
            }
            if filled == capacity {
                let newCapacity = min(capacity * 2, maxLineBytes + 1)
                let bigger = UnsafeMutablePointer<UInt8>.allocate(capacity: newCapacity)
                bigger.update(from: buffer, count: filled)
                buffer.deallocate()
                buffer = bigger
                capacity = newCapacity
            }
            let n = read(fd, buffer + filled, capacity - filled)
            if n < 0 {
                if errno == EINTR { continue }
                throw RunFileError.system("read", path: path, errno: errno)
            }
            if n == 0 {
                if discarding > 0 {
                    return .endOfFile(fragment: UnsafeBufferPointer(start: buffer, count: 0))
                }
                return .endOfFile(fragment: UnsafeBufferPointer(start: buffer + start, count: filled - start))
            }
            filled += n
        }
    }

    /// The next complete line when it is already in the buffer, or nil (then `nextLine` reads on).
    /// Unlike `nextLine`, it never moves the buffer, so the views it and the `nextLine` before it
    /// handed out stay valid together: a batch of lines is decoded where it lies, without a copy.
    func bufferedLine() -> UnsafeBufferPointer<UInt8>? {
        guard discarding == 0, filled > start + scanned else { return nil }
        guard let hit = memchr(buffer + start + scanned, 0x0A, filled - start - scanned) else {
            scanned = filled - start
            return nil
        }
        let nl = hit.assumingMemoryBound(to: UInt8.self) - buffer
        let lineStart = start
        start = nl + 1
        scanned = 0
        lineNumber += 1
        return UnsafeBufferPointer(start: buffer + lineStart, count: nl - lineStart)
    }

    /// Consumes the fragment last returned by `.endOfFile` (counting it as a line).
    func consumeFragment() {
        if filled > start || discarding > 0 { lineNumber += 1 }
        start = filled
        scanned = 0
        discarding = 0
    }
}
