// One line of the command channel, `RUNDIR/commands.jsonl` (docs/FORMAT.md, "The command
// channel"): its members, its encoding and its decoding. The trainer reads these lines; `gradflow
// attach` (and the Python package) write them.

import Foundation
import JSONCore
import Refinement

/// The members of a command-channel line, in writing order.
enum ChannelField: String, CaseIterable {
    case id, run, issuer, t, command, axis, band, layer, value, adaptive, share
    static let table = FieldTable<Self>("command", required: [.id, .run, .issuer, .t, .command])
}

/// A command line's `issuer` object.
enum IssuerField: String, CaseIterable {
    case user, host, pid
    static let table = FieldTable<Self>("issuer", required: [.user, .host, .pid])
}

/// Who sent a command: the user, the host and the process.
public struct CommandIssuer: Sendable, Equatable {
    public var user: String
    public var host: String
    public var pid: Int

    public init(user: String, host: String, pid: Int) {
        self.user = user
        self.host = host
        self.pid = pid
    }

    /// This process.
    public static var current: CommandIssuer {
        let user = ProcessInfo.processInfo.environment["USER"] ?? getpwuid(geteuid()).map { String(cString: $0.pointee.pw_name) } ?? "?"
        return CommandIssuer(user: user, host: ProcessInfo.processInfo.hostName, pid: Int(getpid()))
    }
}

/// A decoded command line.
public struct ChannelLine: Sendable, Equatable {
    public var id: String
    /// The run the command is meant for (the header's `run_id`).
    public var run: String
    public var issuer: CommandIssuer?
    /// Seconds since 1970 when it was sent.
    public var t: Double?
    public var action: Command.Action

    public init(id: String, run: String, issuer: CommandIssuer? = nil, t: Double? = nil, action: Command.Action) {
        self.id = id
        self.run = run
        self.issuer = issuer
        self.t = t
        self.action = action
    }

    /// The command it asks the trainer for (source `attach`, with its id).
    public var command: Command { Command(action, source: .attach, id: id) }

    /// The longest id a line may carry.
    public static let maxIdBytes = 128

    /// A line that is not a valid command; `id` is set when the line had a readable one, so the
    /// refusal can still name it.
    public struct Problem: Error, Sendable, Equatable, CustomStringConvertible {
        public var id: String?
        public var message: String
        public var description: String { message }

        public init(id: String?, message: String) {
            self.id = id
            self.message = message
        }
    }

    // MARK: - Names of the actions

    /// The `command` member's values, one per action (docs/FORMAT.md, "The command channel").
    enum Name: String, CaseIterable {
        case setWeight = "set_weight", setAdaptive = "set_adaptive", setTarget = "set_target"
        case lrScale = "lr_scale", pause, resume, checkpoint, stop
        case openTwin = "open_twin", revert

        init(_ action: Command.Action) {
            switch action {
            case .setWeight: self = .setWeight
            case .setAdaptive: self = .setAdaptive
            case .setTarget: self = .setTarget
            case .scaleLearningRate: self = .lrScale
            case .pause: self = .pause
            case .resume: self = .resume
            case .checkpointNow: self = .checkpoint
            case .stop: self = .stop
            case .openTwin: self = .openTwin
            case .revert: self = .revert
            }
        }
    }

    // MARK: - Encoding

    /// The line, newline included, for one write(2).
    public func encoded() -> [UInt8] {
        var w = JSONWriter(capacity: 256)
        w.beginObject()
        w.key(ChannelField.id); w.string(id)
        w.key(ChannelField.run); w.string(run)
        if let i = issuer {
            w.key(ChannelField.issuer)
            w.beginObject()
            w.key(IssuerField.user); w.string(i.user)
            w.key(IssuerField.host); w.string(i.host)
            w.key(IssuerField.pid); w.int(i.pid)
            w.endObject()
        }
        if let t { w.key(ChannelField.t); w.double(t) }
        w.key(ChannelField.command); w.string(Name(action).rawValue)
        switch action {
        case let .setWeight(target, value):
            w.key(ChannelField.axis); w.string(target.axis.rawValue)
            w.key(ChannelField.band); w.int(target.band)
            if let l = target.layer { w.key(ChannelField.layer); w.int(l) }
            w.key(ChannelField.value); w.double(value)
        case let .setAdaptive(axis, on):
            w.key(ChannelField.axis); w.string(axis.rawValue)
            w.key(ChannelField.adaptive); w.bool(on)
        case let .setTarget(band, share):
            w.key(ChannelField.band); w.int(band)
            w.key(ChannelField.share); w.double(share)
        case let .scaleLearningRate(v):
            w.key(ChannelField.value); w.double(v)
        case .pause, .resume, .checkpointNow, .stop, .openTwin, .revert:
            break
        }
        w.endObject()
        w.bytes.append(0x0A)
        return w.bytes
    }

    // MARK: - Decoding

    /// Decodes one line (without its newline). Never traps: anything wrong is a `Problem`.
    public static func decode(_ line: UnsafeBufferPointer<UInt8>) throws -> ChannelLine {
        var id: String?, run: String?, name: String?, issuer: CommandIssuer?, t: Double?
        var axis: ScaleAxis?, band: Int?, layer: Int?, value: Double?, adaptive: Bool?, share: Double?
        var reading: ChannelField?  // the member whose value is being read, for the error
        do {
            var s = JSONScanner(line)
            try s.members(ChannelField.table, depth: 2) { field, s in
                reading = field  // left set when reading its value throws
                switch field {
                case .id: id = try s.string()
                case .run: run = try s.string()
                case .issuer:
                    var i = CommandIssuer(user: "", host: "", pid: 0)
                    try s.members(IssuerField.table, depth: 3) { f, s in
                        switch f {
                        case .user: i.user = try s.string()
                        case .host: i.host = try s.string()
                        case .pid: i.pid = try s.int()
                        }
                    }
                    issuer = i
                case .t: t = try s.double()
                case .command: name = try s.string()
                case .axis: axis = try s.named(ScaleAxis.self, "axis")
                case .band: band = try s.int()
                case .layer: layer = try s.optionalInt()
                case .value: value = try s.double()
                case .adaptive: adaptive = try s.bool()
                case .share: share = try s.double()
                }
                reading = nil
            }
            try s.expectEnd()
        } catch let e as JSONSyntaxError {
            throw Problem(id: id, message: "not a command: \(reading.map { "\"\($0.rawValue)\": " } ?? "")\(e)")
        }
        // The field table requires all three and names a missing one.
        guard let id, let run, let name else { throw Problem(id: id, message: "not a command: missing member") }
        guard !id.isEmpty, id.utf8.count <= maxIdBytes else {
            throw Problem(id: nil, message: "\"id\" must hold 1 to \(maxIdBytes) bytes")
        }
        func need<T>(_ v: T?, _ member: String) throws -> T {
            guard let v else { throw Problem(id: id, message: "\(name) needs \"\(member)\"") }
            return v
        }
        guard let known = Name(rawValue: name) else {
            throw Problem(id: id, message: "unknown command \"\(name)\" (known: \(Name.allCases.map(\.rawValue).joined(separator: ", ")))")
        }
        let action: Command.Action
        switch known {
        case .setWeight:
            let a = try need(axis, "axis"), b = try need(band, "band"), v = try need(value, "value")
            guard v.isFinite else { throw Problem(id: id, message: "set_weight: \"value\" must be a finite number") }
            action = .setWeight(WeightTarget(axis: a, band: b, layer: layer), v)
        case .setAdaptive: action = .setAdaptive(try need(axis, "axis"), try need(adaptive, "adaptive"))
        case .setTarget:
            let v = try need(share, "share")
            guard v.isFinite else { throw Problem(id: id, message: "set_target: \"share\" must be a finite number") }
            action = .setTarget(band: try need(band, "band"), share: v)
        case .lrScale:
            let v = try need(value, "value")
            guard Command.isValidLearningRateScale(v) else { throw Problem(id: id, message: "lr_scale: \(Command.learningRateScaleProblem(v))") }
            action = .scaleLearningRate(v)
        case .pause: action = .pause
        case .resume: action = .resume
        case .checkpoint: action = .checkpointNow
        case .stop: action = .stop
        case .openTwin: action = .openTwin
        case .revert: action = .revert
        }
        return ChannelLine(id: id, run: run, issuer: issuer, t: t, action: action)
    }

    public static func decode(_ bytes: [UInt8]) throws -> ChannelLine {
        try bytes.withUnsafeBufferPointer { try decode($0) }
    }
}
