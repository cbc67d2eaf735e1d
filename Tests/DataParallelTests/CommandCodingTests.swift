import DataParallel
import Telemetry
import Testing

/// The bytes that carry rank 0's commands to the other ranks decode to the same commands.
@Suite struct CommandCodingTests {
    @Test func everyCommandRoundTrips() throws {
        let commands: [Command] = [
            .setWeight(WeightTarget(axis: .context, band: 2, layer: 1), 1.5, source: .key),
            .setWeight(WeightTarget(axis: .time, band: 0), 0.25, source: EventSource(rawValue: "debug")),
            .setAdaptive(.depth, true, source: .key),
            .setTarget(band: 1, share: 0.3, source: .key),
            .pause(source: .key), .resume(source: .attach), .checkpointNow(source: .key), .stop(source: .signal),
            .openTwin(source: .key), .revert(source: .key),
            Command(.scaleLearningRate(0.5), source: .attach, id: "host-1-abc-7"),
        ]
        #expect(try CommandCoding.decode(CommandCoding.encode(commands)) == commands)
        #expect(CommandCoding.encode([]).isEmpty)
        #expect(try CommandCoding.decode([]) == [])
    }

    @Test func garbageIsAnError() {
        #expect(throws: (any Error).self) { try CommandCoding.decode(Array("[{\"kind\":\"warp\"}]".utf8)) }
        #expect(throws: (any Error).self) { try CommandCoding.decode(Array("not json".utf8)) }
    }
}
