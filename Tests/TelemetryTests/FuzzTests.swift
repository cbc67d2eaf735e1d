import Foundation
import Testing
@testable import RunFormat
@testable import Telemetry

@Suite("Reader fuzzing")
struct FuzzTests {
    /// A mutation of `base`: bit flips, insertions, deletions, truncation, spliced or repeated lines.
    static func mutate(_ base: [UInt8], _ rng: inout TestRNG) -> [UInt8] {
        var b = base
        let rounds = Int.random(in: 1...4, using: &rng)
        for _ in 0..<rounds {
            guard !b.isEmpty else { break }
            switch Int.random(in: 0..<7, using: &rng) {
            case 0:
                let i = Int.random(in: 0..<b.count, using: &rng)
                b[i] ^= 1 << UInt8.random(in: 0..<8, using: &rng)
            case 1:
                let i = Int.random(in: 0...b.count, using: &rng)
                let pool: [UInt8] = Array("{}[],:\"\\0123456789.eE-+ntfu\n\r \u{7f}".utf8) + [0x00, 0xC3, 0xFF, 0x80]
                b.insert(pool.randomElement(using: &rng)!, at: i)
            case 2:
                let i = Int.random(in: 0..<b.count, using: &rng)
                let n = Int.random(in: 1...min(64, b.count - i), using: &rng)
                b.removeSubrange(i..<(i + n))
            case 3:
                b.removeLast(Int.random(in: 0..<b.count, using: &rng))
            case 4:
                // Splice: the head of one line joined to the tail of another.
                let i = Int.random(in: 0..<b.count, using: &rng)
                let j = Int.random(in: 0..<b.count, using: &rng)
                b = Array(b[0..<min(i, j)]) + Array(b[max(i, j)...])
            case 5:
                // Repeat a random chunk (duplicate lines, duplicate members).
                let i = Int.random(in: 0..<b.count, using: &rng)
                let n = Int.random(in: 1...min(400, b.count - i), using: &rng)
                b.insert(contentsOf: b[i..<(i + n)], at: Int.random(in: 0...b.count, using: &rng))
            default:
                // Overwrite a run of bytes with deep nesting or a long number.
                let junk = Array((Bool.random(using: &rng) ? String(repeating: "[", count: 500) : String(repeating: "9", count: 400)).utf8)
                b.insert(contentsOf: junk, at: Int.random(in: 0...b.count, using: &rng))
            }
        }
        return b
    }

    @Test("thousands of mutated run files: no crash, no hang, every problem has a line")
    func mutatedFiles() throws {
        let dir = Fixtures.tempDirectory()
        defer { Fixtures.cleanup(dir) }
        var e = RecordEncoder()
        var base = e.encode(Fixtures.header())
        for r in Fixtures.records(steps: 3, byHead: false) { base += e.encode(r) }
        var rng = TestRNG(seed: 2024)
        let path = dir + "/run.jsonl"
        let start = Date()
        var fatal = 0, issues = 0, records = 0
        for i in 0..<2000 {
            let bytes = FuzzTests.mutate(base, &rng)
            try Data(bytes).write(to: URL(fileURLWithPath: path))
            let lines = bytes.filter { $0 == 0x0A }.count + 1
            let t0 = Date()
            do {
                let reader = try RunFileReader(path: path, chunkBytes: 512)
                try reader.forEachRecord { _ in records += 1 }
                for issue in reader.issues {
                    #expect(issue.line >= 2 && issue.line <= lines, "file \(i): \(issue)")
                    #expect(!issue.message.isEmpty)
                }
                issues += reader.issueCount
            } catch let error as RunFileError {
                fatal += 1
                #expect(error.line == 1, "file \(i): \(error)")
                #expect(error.description.hasPrefix(path + ":1: "))
            }
            // Backstops against a reader that loops on a mutation, loose enough for a busy machine.
            #expect(Date().timeIntervalSince(t0) < 20, "file \(i) took too long")
        }
        #expect(Date().timeIntervalSince(start) < 600)
        // The mutations must exercise all paths.
        #expect(fatal > 50 && issues > 500 && records > 1000, "fatal \(fatal) issues \(issues) records \(records)")
    }

    @Test("random bytes and mutated lines given to the record decoder only ever throw JSONSyntaxError")
    func mutatedLines() {
        var e = RecordEncoder()
        let lines = Fixtures.records(steps: 3, byHead: false).map { Array(e.encode($0).dropLast()) }
        var rng = TestRNG(seed: 99)
        var thrown = 0
        for i in 0..<10_000 {
            let bytes: [UInt8]
            if i % 4 == 0 {
                bytes = (0..<Int.random(in: 0..<200, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
            } else {
                bytes = FuzzTests.mutate(lines.randomElement(using: &rng)!, &rng).filter { $0 != 0x0A }
            }
            do {
                _ = try RecordDecoder.record(bytes)
            } catch let error as JSONSyntaxError {
                thrown += 1
                #expect(error.offset >= 0 && error.offset <= bytes.count)
            } catch {
                Issue.record("unexpected error type \(error)")
            }
        }
        #expect(thrown > 5_000)
    }
}
