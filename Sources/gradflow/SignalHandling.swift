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
/// One instance is in force at a time (`SignalRoute`); `cancel()` gives the signals back their
/// default action, and a later instance in the same process (replay's key f starts a live run)
/// takes them again.
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

    /// Gives the signals back their default action (SIGHUP stays ignored under nohup).
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
/// and calls the callback in force. `sigaction`, not `DispatchSource.makeSignalSource`: after a
/// cancelled signal source, a second one for the same signal in the same process was never
/// called (libdispatch keeps its kernel-side state), so a run forked from a replay ignored
/// Ctrl-C, SIGTERM and SIGHUP.
enum SignalRoute {
    static let signals: [Int32] = [SIGINT, SIGTERM, SIGHUP]
    private static let lock = NSLock()
    nonisolated(unsafe) private static var callback: (@Sendable (Int32) -> Void)?
    nonisolated(unsafe) private static var owner = 0
    nonisolated(unsafe) private static var lastToken = 0
    /// The pipe's write end, read by the handler.
    nonisolated(unsafe) fileprivate static var writeEnd: Int32 = -1

    /// Whether SIGHUP was ignored when the process started (nohup): then it is never taken.
    private static let hangUpIgnoredAtStart: Bool = {
        var old = sigaction()
        sigaction(SIGHUP, nil, &old)
        return unsafeBitCast(old.__sigaction_handler.sa_handler, to: Int.self) == unsafeBitCast(SIG_IGN, to: Int.self)
    }()

    /// The pipe and the reading thread, made once.
    private static let started: Void = {
        _ = hangUpIgnoredAtStart
        var fds: [Int32] = [-1, -1]
        guard pipe(&fds) == 0 else { return }
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
    }()

    /// Makes `callback` the one called for the signals from now on; the token gives them back.
    static func take(_ callback: @escaping @Sendable (Int32) -> Void) -> Int {
        _ = started
        lock.lock(); defer { lock.unlock() }
        lastToken += 1
        owner = lastToken
        Self.callback = callback
        for sig in signals where !(sig == SIGHUP && hangUpIgnoredAtStart) {
            var action = sigaction()
            action.__sigaction_handler.sa_handler = { sig in
                var byte = UInt8(truncatingIfNeeded: sig)
                _ = write(SignalRoute.writeEnd, &byte, 1)
            }
            sigemptyset(&action.sa_mask)
            action.sa_flags = SA_RESTART
            sigaction(sig, &action, nil)
        }
        return lastToken
    }

    /// The signals' default action again, if `token` is the callback in force.
    static func release(_ token: Int) {
        lock.lock(); defer { lock.unlock() }
        guard owner == token else { return }
        callback = nil
        owner = 0
        for sig in signals where !(sig == SIGHUP && hangUpIgnoredAtStart) { signal(sig, SIG_DFL) }
    }

    private static func deliver(_ sig: Int32) {
        lock.lock()
        let callback = Self.callback
        lock.unlock()
        if let callback {
            callback(sig)
        } else {
            // Released after the signal arrived: what the default action would have done.
            signal(sig, SIG_DFL)
            raise(sig)
        }
    }
}
