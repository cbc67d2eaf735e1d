import Foundation
import Telemetry

/// The bytes that carry a step's commands from rank 0 to the other ranks: the commands' own
/// Codable form as JSON (both ends are the same build); no commands, no bytes.
public enum CommandCoding {
    public static func encode(_ commands: [Command]) -> [UInt8] {
        if commands.isEmpty { return [] }
        // Encoding plain enums of numbers and strings cannot fail.
        return Array(try! JSONEncoder().encode(commands))
    }

    public static func decode(_ bytes: [UInt8]) throws -> [Command] {
        if bytes.isEmpty { return [] }
        return try JSONDecoder().decode([Command].self, from: Data(bytes))
    }
}
