import Foundation
import Model

/// Errors in the data a user pointed the trainer at; each names the path and what was expected.
public struct DataError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// Bytes of one domain, split deterministically into training and validation parts: the last
/// 10 % of each file is validation, so the split never depends on the seed.
///
/// Files are mapped read-only (`mmap`), never copied: the splits are views into the mappings, so
/// a corpus larger than memory costs only the page cache of the windows training reads, and no
/// private memory (docs/PERFORMANCE.md, "Corpora larger than memory").
public struct ByteDataset: Sendable {
    public var name: String
    /// Where the bytes came from ("(embedded)" for the default corpus).
    public var path: String
    /// Each file's first 90 %, in file order.
    public var train: ByteView
    /// Each file's last 10 %, in file order.
    public var validation: ByteView
    /// The data's fingerprint (`fingerprint(of:)`): FNV-1a 64 of all bytes, hex, up to
    /// `fullHashLimit` bytes; above it `sampled-` and a hash of the sizes and sampled blocks.
    public var hash: String
    /// Set for a synthetic task: windows are generated (with a loss mask) instead of read.
    public var task: SyntheticTask?
    public var totalBytes: Int { train.count + validation.count }

    public static let validationFraction = 0.1

    /// A data set of in-memory files (copied once; tests, benchmarks).
    public init(name: String, path: String, files: [[UInt8]]) {
        self.init(name: name, path: path, views: files.map { ByteView($0) })
    }

    /// A data set of whole files, each already a view (a mapping, the embedded literal, a copy).
    init(name: String, path: String, views files: [ByteView]) {
        self.name = name
        self.path = path
        var tr = ByteView(), va = ByteView()
        for f in files {
            let cut = Self.validationCut(f.count)
            tr = tr + f.slice(0..<cut)
            va = va + f.slice(cut..<f.count)
        }
        train = tr
        validation = va
        hash = Self.fingerprint(of: files)
    }

    /// Where a file of `count` bytes splits: its first ⌊0.9 · count⌋ bytes train.
    static func validationCut(_ count: Int) -> Int {
        Int((Double(count) * (1 - validationFraction)).rounded(.down))
    }

    /// Reads a file, or every regular file of a folder (sorted by name, byte order; names that
    /// start with "." and subfolders are skipped), mapping each one.
    public static func load(name: String, path: String) throws -> ByteDataset {
        let files = try dataFiles(path).map(mapFile)
        let ds = ByteDataset(name: name, path: path, views: files)
        guard ds.totalBytes > 0 else { throw DataError("\(path): is empty") }
        return ds
    }

    /// The files that `--data PATH` names: PATH itself, or a folder's regular files by name.
    public static func dataFiles(_ path: String) throws -> [String] {
        var info = stat()
        guard stat(path, &info) == 0 else { throw DataError("\(path): no such file or folder") }
        guard (info.st_mode & S_IFMT) == S_IFDIR else { return [path] }
        let names: [String]
        do { names = try FileManager.default.contentsOfDirectory(atPath: path) } catch {
            throw DataError("\(path): folder cannot be read (check permissions)")
        }
        let files = names.filter { !$0.hasPrefix(".") }
            .sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
            .map { (path as NSString).appendingPathComponent($0) }
            .filter { var s = stat(); return stat($0, &s) == 0 && (s.st_mode & S_IFMT) == S_IFREG }
        guard !files.isEmpty else { throw DataError("\(path): folder has no data files (regular files whose names do not start with '.')") }
        return files
    }

    /// A file's bytes: mapped when it is a regular file; read whole when it is a pipe; a device is refused.
    static func mapFile(_ path: String) throws -> ByteView {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            if errno == EACCES { throw DataError("\(path): cannot be read (check permissions)") }
            throw DataError("\(path): cannot be read (\(String(cString: strerror(errno))))")
        }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw DataError("\(path): cannot be read") }
        if (info.st_mode & S_IFMT) == S_IFREG, let storage = ByteStorage.map(fd: fd, count: Int(info.st_size)) {
            return ByteView(storage: storage, range: 0..<storage.count)
        }
        // A device (/dev/zero, /dev/urandom) has no end: it would be read until memory runs out.
        let kind = info.st_mode & S_IFMT
        guard kind != S_IFCHR && kind != S_IFBLK else {
            throw DataError("\(path): is a device; give a file, a folder of files or a pipe")
        }
        guard let data = try? FileHandle(fileDescriptor: fd, closeOnDealloc: false).readToEnd() ?? Data() else {
            throw DataError("\(path): cannot be read")
        }
        return ByteView([UInt8](data))
    }

    /// The corpus compiled into the binary (about 1 MB of Shakespeare plays; `DefaultCorpus`).
    /// It needs no file at run time, so a copied binary trains without its build folder; its
    /// bytes are read in place from the binary's literal, not copied.
    public static func embedded() throws -> ByteDataset {
        ByteDataset(name: "shakespeare", path: embeddedPath, views: [DefaultCorpus.view])
    }

    /// The `path` of the embedded corpus.
    public static let embeddedPath = "(embedded)"

    /// Data up to this size (all files together) is fingerprinted whole; above it, sampled.
    public static let fullHashLimit = 64 << 20
    /// The sampled fingerprint reads this many blocks of `sampleBlockBytes` (64 MiB in all).
    public static let sampleBlocks = 1024
    public static let sampleBlockBytes = 64 << 10

    /// The fingerprint of whole files, in order (docs/FORMAT.md, the header's `data` `hash`):
    /// - up to `fullHashLimit` bytes: FNV-1a 64 of all the bytes, 16 hex digits (as always);
    /// - above: `sampled-` and 16 hex digits, FNV-1a 64 of the text `gradflow-sampled-v1`, each
    ///   file's size (UInt64, little-endian), then `sampleBlocks` blocks of `sampleBlockBytes` at
    ///   offsets ⌊i · (N − L) / (K − 1)⌋ of the files' concatenation (N bytes, L the block size,
    ///   K blocks, i = 0 … K − 1): the first and last blocks and evenly spaced ones between.
    ///   It reads 64 MiB whatever the corpus size, so a 20 GB corpus starts in well under 5 s.
    public static func fingerprint(of files: [ByteView]) -> String {
        let all = files.reduce(ByteView(), +)
        var h = FNV1a()
        if all.count <= fullHashLimit {
            all.forEachPiece { h.add(UnsafeRawBufferPointer($0)) }
            return h.hex
        }
        h.add(Array("gradflow-sampled-v1".utf8))
        for f in files { h.add(littleEndian: UInt64(f.count)) }
        let n = all.count, l = sampleBlockBytes, k = sampleBlocks
        let offsets = (0..<k).map { $0 * (n - l) / (k - 1) }
        // Ask for every block first, so the reads of a cold file overlap.
        for o in offsets { all.willNeed(o..<(o + l)) }
        for o in offsets { all.withBytes(from: o, count: l) { h.add(UnsafeRawBufferPointer($0)) } }
        return "sampled-" + h.hex
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
        for b in 0..<B {
            let start = rng.below(span)
            guard rows.contains(b) else { continue }
            let r = b - rows.lowerBound
            train.withBytes(from: start, count: T + 1) { data in
                for t in 0..<T {
                    inputs[r * T + t] = Int32(data[t])
                    targets[r * T + t] = Int32(data[t + 1])
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
        for b in 0..<B {
            let w = first + min(b, max(real - 1, 0))
            validation.withBytes(from: w * T, count: T + 1) { data in
                for t in 0..<T {
                    inputs[b * T + t] = Int32(data[t])
                    targets[b * T + t] = Int32(data[t + 1])
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
    public mutating func add(littleEndian value: UInt64) {
        withUnsafeBytes(of: value.littleEndian) { add($0) }
    }
    public var hex: String { String(format: "%016llx", value) }
}

/// The default corpus, Sources/Corpus/Resources/default-corpus.txt (its one source), compiled in:
/// the Embed build plugin (scripts/embed.sh) turns the file into `DefaultCorpus.text` before every
/// build, so editing the text file is all it takes to change it.
enum DefaultCorpus {
    /// The literal's bytes in place (read-only data of the binary; nothing is copied).
    static var view: ByteView {
        ByteView(storage: .unowned(text.utf8Start, count: text.utf8CodeUnitCount), range: 0..<text.utf8CodeUnitCount)
    }
}
