import Foundation
import Refinement
import Telemetry

/// How a run pairs its interventions with twins, which changes it makes by script, and how it
/// guards against divergence (`gradflow train --twin-steps --twin-at --change --schedule
/// --on-divergence --snapshot-every --spike-mads`).
public struct InterventionSettings: Sendable, Equatable {
    /// Length of a twin window in paired steps; 0 turns twins off.
    public var twinSteps = 200
    /// Commands applied at a step boundary, exactly as if a key had sent them then.
    public var scheduled: [ScheduledCommand] = []
    public var divergence = DivergenceSettings()

    public init() {}
}

/// A command the trainer applies at the boundary before step `step` (0-based: with
/// `step` = 200 the change is in force from the 201st step on, and its event says step 200).
public struct ScheduledCommand: Sendable, Equatable {
    public var step: Int
    public var command: Command
    public init(step: Int, command: Command) {
        self.step = step
        self.command = command
    }
}

/// An error in a --change, --twin-at or --schedule value; the message names the flag or file and line.
public struct InterventionError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// One scripted change as written on the command line or in a schedule file:
/// `STEP:AXIS.BAND=VALUE` (BAND a band name or index) or `STEP:AXIS=adaptive|manual`.
public struct ChangeSpec: Sendable, Equatable {
    public var step: Int
    public var axis: ScaleAxis
    /// nil for a mode change.
    public var band: String?
    public var value: Double?
    public var adaptive: Bool?

    /// Parses the text; `place` names where it came from in the error ("--change", "FILE:LINE").
    public static func parse(_ text: String, place: String) throws -> ChangeSpec {
        let expected = "expected STEP:AXIS.BAND=VALUE or STEP:AXIS=adaptive|manual (e.g. 200:context.long=4, 300:time=adaptive)"
        let t = text.trimmingCharacters(in: .whitespaces)
        guard let colon = t.firstIndex(of: ":"), let step = Int(t[..<colon]), step >= 0 else {
            throw InterventionError("\(place) '\(text)': \(expected)")
        }
        let rest = t[t.index(after: colon)...]
        guard let eq = rest.firstIndex(of: "=") else { throw InterventionError("\(place) '\(text)': \(expected)") }
        let lhs = rest[..<eq], rhs = String(rest[rest.index(after: eq)...])
        let parts = lhs.split(separator: ".", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
        guard let axis = ScaleAxis(rawValue: parts[0]) else {
            throw InterventionError("\(place) '\(text)': unknown axis '\(parts[0])' (context, time or depth)")
        }
        if parts.count == 1 {
            switch rhs {
            case "adaptive": return ChangeSpec(step: step, axis: axis, band: nil, value: nil, adaptive: true)
            case "manual": return ChangeSpec(step: step, axis: axis, band: nil, value: nil, adaptive: false)
            default: throw InterventionError("\(place) '\(text)': a mode change is AXIS=adaptive or AXIS=manual")
            }
        }
        guard !parts[1].isEmpty, let value = Double(rhs), value.isFinite else {
            throw InterventionError("\(place) '\(text)': \(expected)")
        }
        return ChangeSpec(step: step, axis: axis, band: parts[1], value: value, adaptive: nil)
    }

    /// The command, with the band name looked up among `bandNames` (or taken as an index).
    public func command(bandNames: [String], place: String, source: EventSource) throws -> Command {
        if let adaptive { return .setAdaptive(axis, adaptive, source: source) }
        let name = band ?? ""
        guard let index = bandNames.firstIndex(of: name) ?? Int(name).flatMap({ $0 >= 0 && $0 < bandNames.count ? $0 : nil }) else {
            throw InterventionError("\(place): \(axis.rawValue) has no band '\(name)' (bands: \(bandNames.joined(separator: ", ")))")
        }
        return .setWeight(WeightTarget(axis: axis, band: index), value ?? 1, source: source)
    }
}

/// Reads a schedule: the weight, mode and target changes, A/A windows and reverts of a recorded
/// run (a run file or its folder), at the same steps, or a text file with one change per line in
/// the --change syntax (`#` starts a comment).
public enum Schedule {
    public static func read(path: String, bandNames: (ScaleAxis) -> [String]) throws -> [ScheduledCommand] {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw InterventionError("--schedule \(path): no such file or run folder")
        }
        if !isDirectory.boolValue, let text = try? String(contentsOfFile: path, encoding: .utf8),
           !text.hasPrefix("{") {
            var out: [ScheduledCommand] = []
            for (i, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
                let line = raw.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? ""
                if line.trimmingCharacters(in: .whitespaces).isEmpty { continue }
                let place = "--schedule \(path):\(i + 1)"
                let spec = try ChangeSpec.parse(line, place: place)
                out.append(ScheduledCommand(step: spec.step, command: try spec.command(bandNames: bandNames(spec.axis), place: place, source: .schedule)))
            }
            return out
        }
        let reader: RunFileReader
        do { reader = try RunFileReader(path: path) } catch { throw InterventionError("--schedule \(path): \(error)") }
        var out: [ScheduledCommand] = []
        try reader.forEachRecord { record in
            guard case let .event(e) = record, let c = command(replaying: e) else { return }
            out.append(ScheduledCommand(step: e.step, command: c))
        }
        return out
    }

    /// The command that made a recorded event, or nil for events no command makes.
    static func command(replaying e: EventRecord) -> Command? {
        let source = EventSource.schedule
        switch e.kind {
        case .weight:
            guard let axis = e.axis, let band = e.band, let v = e.newValue else { return nil }
            return .setWeight(WeightTarget(axis: axis, band: band, layer: e.layer), v, source: source)
        case .mode:
            guard let axis = e.axis, let v = e.newValue else { return nil }
            return .setAdaptive(axis, v != 0, source: source)
        case .target:
            guard let band = e.band, let v = e.newValue else { return nil }
            return .setTarget(band: band, share: v, source: source)
        case .refused:
            // Sent again so that it is refused again and recorded as refused.
            guard let axis = e.axis else { return nil }
            if let band = e.band, let v = e.newValue {
                return .setWeight(WeightTarget(axis: axis, band: band, layer: e.layer), v, source: source)
            }
            return .setAdaptive(axis, true, source: source)
        case .twin: return .openTwin(source: source)
        case .revert: return .revert(source: source)
        default: return nil
        }
    }
}

extension Trainer {
    /// Band (or group) names of an axis in this run, for resolving `--change` band names.
    public func bandNames(_ axis: ScaleAxis) -> [String] { engine.weights.bandNames(axis) }
}
