import Foundation
import Testing
@testable import gradflow

/// Where `gradflow train` without --out puts a run.
@Suite struct RunDirectoryTests {
    @Test("runs started within the same second without --out get the next free name, not an error")
    func sameSecondRunsGetTheNextName() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("gradflow-rundir-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let base = dir + "/runs/2026-12-07-203054"
        #expect(TrainCommand.freeRunDirectory(base) == base)
        for (made, next) in [(base, base + "-2"), (base + "-2", base + "-3")] {
            try FileManager.default.createDirectory(atPath: made, withIntermediateDirectories: true)
            try Data("{}\n".utf8).write(to: URL(fileURLWithPath: made + "/run.jsonl"))
            #expect(TrainCommand.freeRunDirectory(base) == next)
        }
        // With --out, an existing run is refused as before.
        let explicit = try TrainCommand.parse(["--out", base])
        #expect(throws: (any Error).self) { _ = try explicit.newRunDirectory() }
    }
}
