import Refinement
import Foundation
import Telemetry

/// The bytes that carry a step's commands from rank 0 to the other ranks (JSON of a flat form;
/// both ends are the same build).
public enum CommandCoding {
    struct Wire: Codable, Equatable {
        var kind: String
        var axis: String?
        var band: Int?
        var layer: Int?
        var value: Double?
        var on: Bool?
        var source: String?
    }

    public struct DecodingError: Error, CustomStringConvertible {
        public var description: String
    }

    public static func encode(_ commands: [Command]) -> [UInt8] {
        if commands.isEmpty { return [] }
        let wire = commands.map { c -> Wire in
            switch c {
            case let .setWeight(t, v, source):
                return Wire(kind: "weight", axis: t.axis.rawValue, band: t.band, layer: t.layer, value: v, source: source)
            case let .setAdaptive(axis, on, source):
                return Wire(kind: "adaptive", axis: axis.rawValue, on: on, source: source)
            case let .setTarget(band, share, source):
                return Wire(kind: "target", band: band, value: share, source: source)
            case .pause: return Wire(kind: "pause")
            case .resume: return Wire(kind: "resume")
            case .checkpointNow: return Wire(kind: "checkpoint")
            case .stop: return Wire(kind: "stop")
            }
        }
        return Array((try? JSONEncoder().encode(wire)) ?? Data())
    }

    public static func decode(_ bytes: [UInt8]) throws -> [Command] {
        if bytes.isEmpty { return [] }
        let wire = try JSONDecoder().decode([Wire].self, from: Data(bytes))
        return try wire.map { w in
            func axis() throws -> ScaleAxis {
                guard let a = w.axis.flatMap(ScaleAxis.init(rawValue:)) else { throw DecodingError(description: "command \(w.kind) without a known axis") }
                return a
            }
            func need<T>(_ v: T?, _ name: String) throws -> T {
                guard let v else { throw DecodingError(description: "command \(w.kind) without \(name)") }
                return v
            }
            switch w.kind {
            case "weight":
                return .setWeight(WeightTarget(axis: try axis(), band: try need(w.band, "band"), layer: w.layer),
                                  try need(w.value, "value"), source: w.source ?? "")
            case "adaptive": return .setAdaptive(try axis(), try need(w.on, "on"), source: w.source ?? "")
            case "target": return .setTarget(band: try need(w.band, "band"), share: try need(w.value, "value"), source: w.source ?? "")
            case "pause": return .pause
            case "resume": return .resume
            case "checkpoint": return .checkpointNow
            case "stop": return .stop
            default: throw DecodingError(description: "unknown command kind \(w.kind)")
            }
        }
    }
}
