import Foundation
import Model

/// Errors in the data a user pointed the trainer at; each names the path and what was expected.
public struct DataError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// Bytes of one domain, split deterministically into training and validation parts: the last
/// 10 % of each file is validation, so the split never depends on the seed.
public struct ByteDataset: Sendable {
    public var name: String
    /// Where the bytes came from ("(embedded)" for the default corpus).
    public var path: String
    public var train: [UInt8]
    public var validation: [UInt8]
    /// FNV-1a 64 of all bytes, hex.
    public var hash: String
    /// Set for a synthetic task: windows are generated (with a loss mask) instead of read.
    public var task: SyntheticTask?
    public var totalBytes: Int { train.count + validation.count }

    public static let validationFraction = 0.1

    public init(name: String, path: String, files: [[UInt8]]) {
        self.name = name
        self.path = path
        var tr: [UInt8] = [], va: [UInt8] = []
        var h = FNV1a()
        for f in files {
            let cut = Int((Double(f.count) * (1 - Self.validationFraction)).rounded(.down))
            tr += f[0..<cut]
            va += f[cut...]
            h.add(f)
        }
        train = tr
        validation = va
        hash = h.hex
    }

    /// Reads a file, or every `.txt` file of a folder (sorted by name), as bytes.
    public static func load(name: String, path: String) throws -> ByteDataset {
        let fm = FileManager.default
        var isDir: ObjCBool = false
        guard fm.fileExists(atPath: path, isDirectory: &isDir) else {
            throw DataError("\(path): no such file or folder")
        }
        var files: [[UInt8]] = []
        if isDir.boolValue {
            let names = (try? fm.contentsOfDirectory(atPath: path)) ?? []
            let txt = names.filter { $0.hasSuffix(".txt") }.sorted()
            guard !txt.isEmpty else { throw DataError("\(path): folder has no .txt files") }
            for n in txt { files.append(try readBytes((path as NSString).appendingPathComponent(n))) }
        } else {
            files.append(try readBytes(path))
        }
        let ds = ByteDataset(name: name, path: path, files: files)
        guard ds.totalBytes > 0 else { throw DataError("\(path): is empty") }
        return ds
    }

    /// The corpus compiled into the binary (about 1 MB of Shakespeare plays; `DefaultCorpus`).
    /// It needs no file at run time, so a copied binary trains without its build folder.
    public static func embedded() throws -> ByteDataset {
        ByteDataset(name: "shakespeare", path: embeddedPath, files: [DefaultCorpus.bytes])
    }

    /// The `path` of the embedded corpus.
    public static let embeddedPath = "(embedded)"

    static func readBytes(_ path: String) throws -> [UInt8] {
        guard FileManager.default.isReadableFile(atPath: path) else {
            throw DataError("\(path): cannot be read (check permissions)")
        }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw DataError("\(path): cannot be read")
        }
        return [UInt8](data)
    }

    /// Checks that windows of `T + 1` bytes fit in both splits.
    public func check(context T: Int) throws {
        if task != nil { return }
        if train.count < T + 1 {
            throw DataError("\(path): training split has \(train.count) bytes; context \(T) needs at least \(T + 1) (use a smaller --context or more data)")
        }
        if validation.count < T + 1 {
            throw DataError("\(path): validation split (last 10 %) has \(validation.count) bytes; context \(T) needs at least \(T + 1)")
        }
    }

    /// Fills `inputs`/`targets` [B·T] with B windows at random offsets of the training split;
    /// with `rows`, only those rows of the batch (into rows 0 ..< rows.count), drawing all B offsets.
    public func sampleTrainingBatch(into inputs: UnsafeMutablePointer<Int32>,
                                    targets: UnsafeMutablePointer<Int32>,
                                    B: Int, T: Int, rows: Range<Int>? = nil, rng: inout Xoshiro256) {
        let span = train.count - T
        let rows = rows ?? 0..<B
        train.withUnsafeBufferPointer { data in
            for b in 0..<B {
                let start = rng.below(span)
                guard rows.contains(b) else { continue }
                let r = b - rows.lowerBound
                for t in 0..<T {
                    inputs[r * T + t] = Int32(data[start + t])
                    targets[r * T + t] = Int32(data[start + t + 1])
                }
            }
        }
    }

    /// Number of validation windows available (non-overlapping, stride T), capped at `limit`.
    public func validationWindowCount(T: Int, limit: Int) -> Int {
        if task != nil { return limit }
        return min(limit, max(0, (validation.count - 1) / T))
    }

    /// Fills rows with validation windows `first ..< first + B` (stride T from the split's start);
    /// returns how many rows hold real windows (the rest repeat the last one and should be ignored).
    public func validationBatch(into inputs: UnsafeMutablePointer<Int32>,
                                targets: UnsafeMutablePointer<Int32>,
                                first: Int, count: Int, B: Int, T: Int) -> Int {
        let real = max(0, min(B, count - first))
        validation.withUnsafeBufferPointer { data in
            for b in 0..<B {
                let w = first + min(b, max(real - 1, 0))
                let start = w * T
                for t in 0..<T {
                    inputs[b * T + t] = Int32(data[start + t])
                    targets[b * T + t] = Int32(data[start + t + 1])
                }
            }
        }
        return real
    }
}

/// FNV-1a, 64 bit: a fast, stable fingerprint (not a cryptographic hash).
public struct FNV1a: Sendable {
    public private(set) var value: UInt64 = 0xcbf2_9ce4_8422_2325
    public init() {}
    public mutating func add<S: Sequence>(_ bytes: S) where S.Element == UInt8 {
        for b in bytes { value = (value ^ UInt64(b)) &* 0x100_0000_01b3 }
    }
    public mutating func add(_ buffer: UnsafeRawBufferPointer) {
        var v = value
        for b in buffer { v = (v ^ UInt64(b)) &* 0x100_0000_01b3 }
        value = v
    }
    public var hex: String { String(format: "%016llx", value) }
}

/// The default corpus, Sources/Training/Resources/default-corpus.txt (its one source), compiled in:
/// the Embed build plugin (scripts/embed.sh) turns the file into `DefaultCorpus.text` before every
/// build, so editing the text file is all it takes to change it.
enum DefaultCorpus {
    static var bytes: [UInt8] {
        [UInt8](UnsafeBufferPointer(start: text.utf8Start, count: text.utf8CodeUnitCount))
    }
}
