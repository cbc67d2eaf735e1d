import Foundation
import TestSupport
import Testing

/// The default corpus is part of the executable: a copy of the binary elsewhere trains on it with
/// no file from the build folder (issue 13, bug 4).
@Suite struct EmbeddedCorpusTests {
    @Test("a copied binary trains on the embedded corpus without its build folder's resource bundle")
    func copiedBinaryTrains() throws {
        let binary = try #require(EndToEnd.binary, "gradflow binary not found next to the test bundle (set GRADFLOW_BINARY)")
        let fm = FileManager.default
        let dir = fm.temporaryDirectory.appendingPathComponent("gradflow-corpus-\(UUID().uuidString)")
        try fm.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? fm.removeItem(at: dir) }
        let copy = dir.appendingPathComponent("gradflow")
        // Written through a close-on-exec descriptor: a program another test spawns meanwhile
        // (mpirun, a tmux server) must not inherit it, or exec of the copy fails with ETXTBSY for
        // as long as that program lives.
        let bytes = try Data(contentsOf: binary)
        let fd = open(copy.path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o755)
        try #require(fd >= 0, "cannot create \(copy.path)")
        let written = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        close(fd)
        try #require(written == bytes.count, "short write of \(copy.path)")
        // As if the build folder were gone: hide any resource bundle beside the original binary (a
        // bundle lookup would find it there by its absolute path), and put it back afterwards.
        let buildDir = binary.deletingLastPathComponent()
        let bundles = ((try? fm.contentsOfDirectory(atPath: buildDir.path)) ?? []).filter { $0.hasSuffix(".resources") }
        var hidden: [(URL, URL)] = []
        defer { for (from, to) in hidden { try? fm.moveItem(at: to, to: from) } }
        for name in bundles {
            let from = buildDir.appendingPathComponent(name), to = dir.appendingPathComponent(name + ".hidden")
            try fm.moveItem(at: from, to: to)
            hidden.append((from, to))
        }
        let runDir = dir.appendingPathComponent("run").path
        let arguments = ["train", "--no-tui", "--layers", "1", "--heads", "2", "--dim", "16", "--context", "32",
                         "--batch", "2", "--steps", "3", "--eval-windows", "2", "--threads", "1", "--out", runDir]
        var result = ChildProcess.run(copy.path, arguments)
        // ETXTBSY (26): a process forked by another test between the open and its exec can still
        // hold the descriptor for a moment (longer on a busy machine); the copy is complete, so try
        // again, for up to a minute.
        for _ in 0..<600 where result.status == ChildProcess.notStarted && result.output.hasSuffix("error \(ETXTBSY)") {
            usleep(100_000)
            result = ChildProcess.run(copy.path, arguments)
        }
        #expect(result.status == 0, "gradflow train exited with \(result.status):\n\(result.output)")
        let lines = (try? String(contentsOfFile: runDir + "/run.jsonl", encoding: .utf8))?.split(separator: "\n") ?? []
        #expect(lines.first?.contains("\"path\":\"(embedded)\"") == true, "the header names the embedded corpus")
        #expect(lines.filter { $0.contains("\"type\":\"step\"") }.count == 3)
        #expect(lines.last?.contains("\"reason\":\"completed\"") == true, "the run ends completed:\n\(result.output)")
    }
}
