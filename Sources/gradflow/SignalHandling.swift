import Foundation
import Telemetry

/// SIGINT, SIGTERM and SIGHUP ask for a clean stop once; a second SIGINT or SIGTERM exits at once.
///
/// SIGHUP is the terminal going away (a closed window, a dropped ssh session): the run stops as
/// for Ctrl-C, with its checkpoint and end record, so `--resume` continues it. A closing terminal
/// often sends it twice (the shell passes one on, then the kernel sends one when the shell
/// exits), so a SIGHUP never forces the exit. A process started under `nohup` inherits SIGHUP
/// ignored and keeps it so: that run goes on.
///
/// One instance is in force at a time (`SignalRoute`); `cancel()` gives the signals back the
/// handlers found before, and a later instance in the same process (replay's key f starts a live
/// run) takes them again.
final class SignalHandling: Sendable {
    private let token: Int
    private let counter: Counter

    /// What every stop that waits for the step to end says (a signal, a closed output, a run file
    /// that can no longer be written).
    static let stopping = "stopping at the end of this step"

    /// Whether a stop signal has arrived.
    var stopRequested: Bool { counter.value > 0 }

    /// `onForce` runs on a second SIGINT or SIGTERM: it must end the process without waiting for
    /// the trainer thread (`SignalHandling.exitNow`).
    init(onStop: @escaping @Sendable () -> Void, onForce: @escaping @Sendable () -> Void = { SignalHandling.exitNow() },
         quiet: Bool = false) {
        let count = Counter()
        token = SignalRoute.take { sig in
            let n = count.increment()
            if n == 1 {
                if !quiet { Console.error("\ngradflow: \(SignalHandling.stopping)\(sig == SIGHUP ? "" : " (again to quit at once)")\n") }
                onStop()
            } else if sig != SIGHUP {
                onForce()
            }
        }
        counter = count
    }

    /// Ends the process at once with status 130, as a second Ctrl-C asks: `_exit`, not `exit`,
    /// because the trainer thread may be inside OpenBLAS, whose buffers `exit`'s destructors free
    /// under it (a crash, seen as a segfault with a backtrace). `cleanUp` runs first (restore the
    /// terminal, remove this process's temporary checkpoint).
    static func exitNow(cleanUp: () -> Void = {}) -> Never {
        cleanUp()
        _exit(130)
    }

    /// Gives the signals back the handlers found before (a signal ignored at start stays ignored).
    func cancel() {
        SignalRoute.release(token)
    }

    /// The stop count, shared with the route's callback.
    private final class Counter: @unchecked Sendable {
        private let lock = NSLock()
        private var n = 0
        func increment() -> Int {
            lock.lock(); defer { lock.unlock() }
            n += 1
            return n
        }
        var value: Int {
            lock.lock(); defer { lock.unlock() }
            return n
        }
    }
}

/// The process's one route for SIGINT, SIGTERM and SIGHUP: a `sigaction` handler writes the
/// signal's number to a pipe (about all a handler may safely do), and a thread of its own reads it
/// and calls the callback in force. `sigaction`, not `DispatchSource.makeSignalSource` after
/// `signal(SIG_IGN)`: done a second time in one process (replay's key f starting a live run),
/// that left the signals ignored (the process's SigIgn mask showed SIGINT, SIGTERM and SIGHUP),
/// so the forked run could be stopped only by `kill -9`.
///
/// A signal ignored when the route first meets it stays ignored (SIGHUP under `nohup`, SIGINT in
/// a shell's background job), as Unix programs do. `release` puts back the handlers found at
/// `take` (ncurses' own, which restore the terminal), not the default action.
enum SignalRoute {
    static let signals: [Int32] = [SIGINT, SIGTERM, SIGHUP]
    private static let lock = NSLock()
    nonisolated(unsafe) private static var callback: (@Sendable (Int32) -> Void)?
    nonisolated(unsafe) private static var owner = 0
    nonisolated(unsafe) private static var lastToken = 0
    /// The actions found when the route took each signal, put back by `release`.
    nonisolated(unsafe) private static var saved: [Int32: sigaction] = [:]
    /// The pipe's write end, read by the handler (-1: no pipe, no handler installed).
    nonisolated(unsafe) fileprivate static var writeEnd: Int32 = -1

    /// The signals ignored when the process started: never taken.
    private static let ignoredAtStart: Set<Int32> = Set(signals.filter { sig in
        var old = sigaction()
        sigaction(sig, nil, &old)
        return unsafeBitCast(old.__sigaction_handler.sa_handler, to: Int.self) == unsafeBitCast(SIG_IGN, to: Int.self)
    })

    /// The pipe and the reading thread, made once; false when there is no pipe (then the signals
    /// keep their actions: a handler with nowhere to write would swallow them).
    private static let started: Bool = {
        _ = ignoredAtStart
        var fds: [Int32] = [-1, -1]
        guard pipe(&fds) == 0 else { return false }
        for fd in fds { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        _ = fcntl(fds[1], F_SETFL, fcntl(fds[1], F_GETFL) | O_NONBLOCK)   // a full pipe drops, never blocks the handler
        writeEnd = fds[1]
        let readEnd = fds[0]
        let thread = Thread {
            var byte: UInt8 = 0
            while true {
                let n = read(readEnd, &byte, 1)
                if n < 0 && errno == EINTR { continue }
                guard n == 1 else { return }
                deliver(Int32(byte))
            }
        }
        thread.name = "gradflow.signals"
        thread.start()
        return true
    }()

    /// Makes `callback` the one called for the signals from now on; the token gives them back.
    static func take(_ callback: @escaping @Sendable (Int32) -> Void) -> Int {
        let ready = started
        lock.lock(); defer { lock.unlock() }
        lastToken += 1
        owner = lastToken
        Self.callback = callback
        guard ready else { return lastToken }
        for sig in signals where !ignoredAtStart.contains(sig) && saved[sig] == nil {
            var action = sigaction()
            action.__sigaction_handler.sa_handler = { sig in
                let kept = errno   // the interrupted thread's, whatever write does
                var byte = UInt8(truncatingIfNeeded: sig)
                _ = write(SignalRoute.writeEnd, &byte, 1)
                errno = kept
            }
            sigemptyset(&action.sa_mask)
            action.sa_flags = SA_RESTART
            var old = sigaction()
            sigaction(sig, &action, &old)
            saved[sig] = old
        }
        return lastToken
    }

    /// The handlers found at `take` again, if `token` is the callback in force.
    static func release(_ token: Int) {
        lock.lock(); defer { lock.unlock() }
        guard owner == token else { return }
        callback = nil
        owner = 0
        for (sig, old) in saved {
            var action = old
            sigaction(sig, &action, nil)
        }
        saved = [:]
    }

    private static func deliver(_ sig: Int32) {
        lock.lock()
        let callback = Self.callback
        lock.unlock()
        if let callback {
            callback(sig)
        } else {
            // Released after the signal arrived: what the handler in force now would have done.
            raise(sig)
        }
    }
}
