import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The command line's own output: lines to standard output and messages to standard error,
/// written so that losing them never ends the process.
///
/// `FileHandle.write` traps when the write fails, and a write to a closed pipe kills the process
/// with SIGPIPE: either would end a training run without its end record or checkpoint. Here a
/// failed write is a result (`writeLine`) or is dropped (`error`, which has nowhere left to say it).
public enum Console {
    /// Writes `text` to standard error as it is (add the newline); a failure is ignored.
    public static func error(_ text: String) {
        fputs(text, stderr)
        fflush(stderr)
    }

    /// Writes `line` and a newline to standard output and flushes; false when the output is gone
    /// (a closed pipe, a hung-up terminal, a closed descriptor). A reader too slow for a
    /// non-blocking output (EAGAIN) only delays or drops lines: that output is not gone.
    @discardableResult
    public static func writeLine(_ line: String) -> Bool {
        guard fputs(line + "\n", stdout) >= 0, fflush(stdout) == 0 else {
            let failure = errno
            clearerr(stdout)
            return !outputGone(errno: failure)
        }
        return true
    }

    /// Whether a write that failed with `errno` means its reader is gone for good (EPIPE, EIO,
    /// EBADF; EAGAIN and EINTR are not).
    public static func outputGone(errno: Int32) -> Bool {
        errno == EPIPE || errno == EIO || errno == EBADF
    }

    /// Makes a write to a closed pipe fail with EPIPE instead of killing the process, for the
    /// rest of its life (a trainer then stops cleanly when `writeLine` reports the loss).
    public static func ignoreBrokenPipe() {
        signal(SIGPIPE, SIG_IGN)
    }
}
