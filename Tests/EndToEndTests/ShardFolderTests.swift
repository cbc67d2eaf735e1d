import Foundation
import TestSupport
import Testing

/// `gradflow train --data DIR` on a folder of shards (issue 20, item 3): every regular file by name,
/// and the header's size and fingerprint describe all of them.
@Suite struct ShardFolderTests {
    @Test(.timeLimit(.minutes(10)))
    func aFolderOfShardsTrainsAndItsHeaderDescribesEveryFile() throws {
        let binary = try #require(EndToEnd.binary, "gradflow binary not found next to the test bundle (set GRADFLOW_BINARY)")
        let fm = FileManager.default
        let dir = fm.temporaryDirectory.appendingPathComponent("gradflow-shards-\(UUID().uuidString)")
        let shards = dir.appendingPathComponent("shards")
        try fm.createDirectory(at: shards, withIntermediateDirectories: true)
        defer { try? fm.removeItem(at: dir) }
        var all: [UInt8] = []
        for (i, name) in ["part-000", "part-001.txt", "part-002.bin"].enumerated() {
            let text = Array(String(repeating: "shard \(i): to be or not to be, that is the question. ", count: 60 + 10 * i).utf8)
            try Data(text).write(to: shards.appendingPathComponent(name))
            all += text
        }
        try Data("skipped".utf8).write(to: shards.appendingPathComponent(".DS_Store"))
        let run = dir.appendingPathComponent("run").path
        let trained = ChildProcess.run(binary.path, ["train", "--data", shards.path, "--layers", "1", "--heads", "2", "--dim", "16",
                                                     "--context", "32", "--batch", "2", "--steps", "3", "--eval-windows", "2",
                                                     "--threads", "1", "--no-tui", "--out", run])
        #expect(trained.status == 0, "training failed:\n\(trained.output)")
        let header = try String(contentsOfFile: run + "/run.jsonl", encoding: .utf8).split(separator: "\n").first ?? ""
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in all { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
        #expect(header.contains(#""bytes":\#(all.count),"hash":"\#(String(format: "%016llx", h))""#),
                "the header's bytes and FNV-1a 64 cover the three shards in name order:\n\(header)")
    }
}
