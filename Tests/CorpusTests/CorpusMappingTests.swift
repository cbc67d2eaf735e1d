import Foundation
import Model
import Testing
@testable import Corpus

/// A fresh folder under the system's temporary directory.
private func temporaryDirectory() -> String {
    let path = NSTemporaryDirectory() + "gradflow-test-" + UUID().uuidString
    try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

/// `--data` maps its files and copies none of them (issue 20, item 3): folders of shards, the
/// per-file validation split, windows across file seams, the fingerprint, and private memory.
@Suite struct CorpusMappingTests {
    func write(_ bytes: [UInt8], to path: String) {
        _ = FileManager.default.createFile(atPath: path, contents: Data(bytes))
    }

    func bytes(_ n: Int, seed: UInt8) -> [UInt8] { (0..<n).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ Int(seed)) } }

    @Test func aFolderIsEveryRegularFileByNameMappedWithEachFilesLastTenthForValidation() throws {
        let dir = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let a = bytes(100, seed: 1), b = bytes(55, seed: 2), c = bytes(31, seed: 3)
        write(b, to: dir + "/shard-b.bin")
        write(a, to: dir + "/shard-a.txt")
        write(c, to: dir + "/shard-c")
        write([9, 9, 9], to: dir + "/.hidden")
        try FileManager.default.createDirectory(atPath: dir + "/sub", withIntermediateDirectories: true)
        write([7, 7, 7], to: dir + "/sub/inside.txt")

        #expect(try ByteDataset.dataFiles(dir).map { ($0 as NSString).lastPathComponent } == ["shard-a.txt", "shard-b.bin", "shard-c"])
        let d = try ByteDataset.load(name: "shards", path: dir)
        #expect(d.train.isMapped && d.validation.isMapped, "the splits are views of the mapped files")
        #expect(d.totalBytes == 100 + 55 + 31)
        // ⌊0.9 · n⌋ bytes of each file train; the rest is its validation part.
        #expect(d.train.array == Array(a[0..<90]) + Array(b[0..<49]) + Array(c[0..<27]))
        #expect(d.validation.array == Array(a[90...]) + Array(b[49...]) + Array(c[27...]))
        // The same bytes in memory give the same data set, fingerprint included.
        let same = ByteDataset(name: "shards", path: dir, files: [a, b, c])
        #expect(same.hash == d.hash && same.train.array == d.train.array)

        let empty = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: empty) }
        write([1], to: empty + "/.only-hidden")
        #expect { _ = try ByteDataset.load(name: "e", path: empty) } throws: { "\($0)".contains("folder has no data files") }
    }

    @Test func aDeviceIsRefusedAndAPipeIsReadWhole() throws {
        #expect { _ = try ByteDataset.load(name: "z", path: "/dev/zero") } throws: { "\($0)".contains("/dev/zero: is a device") }
        var fds: [Int32] = [0, 0]
        #expect(pipe(&fds) == 0)
        let text = Array("a pipe's bytes".utf8)
        #expect(Glibc.write(fds[1], text, text.count) == text.count)
        close(fds[1])
        defer { close(fds[0]) }
        let ds = try ByteDataset.load(name: "p", path: "/dev/fd/\(fds[0])")
        #expect(ds.totalBytes == text.count)
    }

    @Test func windowsReadAcrossFileSeamsExactlyAsFromOneArray() throws {
        let dir = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let files = (0..<7).map { bytes(40 + 13 * $0, seed: UInt8($0)) }
        for (i, f) in files.enumerated() { write(f, to: dir + "/\(i).txt") }
        let mapped = try ByteDataset.load(name: "m", path: dir)
        let copied = ByteDataset(name: "m", path: dir, files: files)
        let B = 16, T = 24
        var inA = [Int32](repeating: 0, count: B * T), tgA = inA, inB = inA, tgB = inA
        var rngA = Xoshiro256(seed: 5), rngB = Xoshiro256(seed: 5)
        for _ in 0..<50 {
            mapped.sampleTrainingBatch(into: &inA, targets: &tgA, B: B, T: T, rng: &rngA)
            copied.sampleTrainingBatch(into: &inB, targets: &tgB, B: B, T: T, rng: &rngB)
            #expect(inA == inB && tgA == tgB)
        }
        let n = mapped.validationWindowCount(T: T, limit: 100)
        #expect(n == (mapped.validation.count - 1) / T)
        _ = mapped.validationBatch(into: &inA, targets: &tgA, first: 0, count: n, B: B, T: T)
        _ = copied.validationBatch(into: &inB, targets: &tgB, first: 0, count: n, B: B, T: T)
        #expect(inA == inB && tgA == tgB)
    }

    @Test func theFingerprintIsFNV1aOfTheBytesUpTo64MiBAndSampledAbove() throws {
        // Small data keeps the meaning run files always had: FNV-1a 64 of all bytes.
        let hello = ByteDataset(name: "h", path: "h", files: [Array("hel".utf8), Array("lo".utf8)])
        #expect(hello.hash == "a430d84680aabd0b")
        let embedded = try ByteDataset.embedded()
        var h = FNV1a()
        (embedded.train + embedded.validation).forEachPiece { h.add(UnsafeRawBufferPointer($0)) }
        #expect(embedded.hash == h.hex, "the embedded corpus keeps its full-byte fingerprint")

        // Above the limit: sampled, stable, and it sees a changed sampled byte and a changed size.
        let dir = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/big.txt"
        try Self.generate(path, bytes: ByteDataset.fullHashLimit + 12_345)
        let first = try ByteDataset.load(name: "b", path: path).hash
        #expect(first.hasPrefix("sampled-") && first.count == "sampled-".count + 16)
        #expect(try ByteDataset.load(name: "b", path: path).hash == first, "the same file, the same fingerprint")
        let handle = try #require(FileHandle(forUpdatingAtPath: path))
        try handle.seek(toOffset: 0)
        try handle.write(contentsOf: Data([0xff]))
        let changed = try ByteDataset.load(name: "b", path: path).hash
        #expect(changed != first, "the first block is always sampled")
        try handle.seekToEnd()
        try handle.write(contentsOf: Data([0x41]))
        try handle.close()
        #expect(try ByteDataset.load(name: "b", path: path).hash != changed, "the size is part of it")
    }

    /// A ~200 MB generated file: loading it, reading every byte, drawing batches from it and
    /// fingerprinting it grow private memory (RssAnon) by far less than its size — a copy would
    /// cost at least 200 MB.
    @Test func aLargeFileCostsNoPrivateMemory() throws {
        let dir = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/corpus.txt"
        let size = 200 << 20
        try Self.generate(path, bytes: size)
        let before = try #require(Self.rssAnon())
        let d = try ByteDataset.load(name: "big", path: path)
        #expect(d.totalBytes == size && d.train.isMapped && d.validation.isMapped)
        var sum = 0
        d.train.forEachPiece { for b in $0 { sum &+= Int(b) } }
        d.validation.forEachPiece { for b in $0 { sum &+= Int(b) } }
        var rng = Xoshiro256(seed: 1)
        var inputs = [Int32](repeating: 0, count: 64 * 256), targets = inputs
        for _ in 0..<200 { d.sampleTrainingBatch(into: &inputs, targets: &targets, B: 64, T: 256, rng: &rng) }
        let after = try #require(Self.rssAnon())
        #expect(sum != 0)
        #expect(after - before < 100 << 20, "private memory grew by \((after - before) >> 20) MB for a \(size >> 20) MB corpus")
    }

    /// Writes `bytes` bytes of cheap text (lines of numbered words) in 1 MB chunks.
    static func generate(_ path: String, bytes: Int) throws {
        _ = FileManager.default.createFile(atPath: path, contents: nil)
        let handle = try #require(FileHandle(forWritingAtPath: path))
        defer { try? handle.close() }
        var chunk = [UInt8]()
        var i = 0
        while chunk.count < 1 << 20 {
            chunk += Array("line \(i) of the generated corpus, word \(i * 7919 % 1000)\n".utf8)
            i += 1
        }
        var left = bytes
        while left > 0 {
            let n = min(left, chunk.count)
            try handle.write(contentsOf: Data(chunk[0..<n]))
            left -= n
        }
    }

    /// This process's private resident memory (RssAnon in /proc/self/status), in bytes.
    static func rssAnon() -> Int? {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
              let line = status.split(separator: "\n").first(where: { $0.hasPrefix("RssAnon:") }),
              let kb = Int(line.split(separator: " ").dropFirst().first ?? "") else { return nil }
        return kb * 1024
    }
}
