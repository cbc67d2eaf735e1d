import Foundation
import Testing
@testable import Training

/// A checkpoint is written to `ckpt-NNNNNN.gfck.tmp-PID` and renamed into place; the temporaries
/// of writes that never finished are removed (this process's on a forced quit, all of them by a
/// writer holding the run file's lock), and nothing else is.
@Suite struct CheckpointTemporariesTests {
    @Test func removesOnlyUnfinishedCheckpointTemporaries() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("gradflow-tmps-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let mine = CheckpointFiles.temporaryPath(for: dir + "/ckpt-000010.gfck", pid: getpid())
        let other = CheckpointFiles.temporaryPath(for: dir + "/ckpt-000020.gfck", pid: 999_999)
        let kept = ["ckpt-000010.gfck", "run.jsonl", "commands.jsonl", "notes.tmp-1"]
        for name in kept { #expect(FileManager.default.createFile(atPath: dir + "/" + name, contents: Data("x".utf8))) }
        for path in [mine, other] { #expect(FileManager.default.createFile(atPath: path, contents: Data("half".utf8))) }
        #expect(mine.hasSuffix("ckpt-000010.gfck.tmp-\(getpid())"))
        #expect(CheckpointFiles.removeTemporaries(in: dir, pid: getpid()) == 1)
        #expect(!FileManager.default.fileExists(atPath: mine) && FileManager.default.fileExists(atPath: other))
        #expect(CheckpointFiles.removeTemporaries(in: dir) == 1)
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir).sorted() == kept.sorted())
    }
}
