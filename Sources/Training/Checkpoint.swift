import Foundation
import Model
import Refinement

/// A checkpoint file could not be used; the message names the file and what is wrong with it.
public struct CheckpointError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// Everything a run needs to continue exactly where it stopped.
///
/// Layout (little-endian): magic `GFCKPT\r\n` · UInt32 format version · UInt32 metadata length ·
/// metadata JSON · for each section in the metadata's order, its Float32 values · UInt64 FNV-1a
/// of every preceding byte. Written to a temporary file, fsynced and renamed into place, so a
/// crash leaves either the old file or the new one, never a torn one.
///
/// Versions: 1 holds the main run (parameters, AdamW, time-band EMAs, refinement, data order).
/// 2 adds what makes a resumed run take the same decisions as the uninterrupted one: the
/// divergence guard's state and the learning-rate scale (metadata `extra` "guard", "lr.scale"),
/// and the twin of the last change, open window or kept for a revert ("twin" in `extra`, sections
/// `twin.*`). A version-1 file still loads (as a run with no twin and a fresh guard); a file of a
/// version this gradflow does not know is refused by name, so a newer file is never half read.
/// `extra` "run.id" (added within version 2, absent from older files) names the run that wrote it,
/// so `--resume` refuses a checkpoint copied in from another run.
public struct Checkpoint {
    /// The JSON head of the file: the run's settings and the main run state's small parts (the
    /// data cursor, AdamW's step, and in `extra` the refinement, guard and twin).
    public struct Metadata: Codable, Equatable {
        public var config: TrainingConfig
        /// The refinement the run was started with (a resumed run keeps it).
        public var refinement: RefinementConfig?
        /// Steps completed.
        public var step: Int
        /// The data cursor (`RunState.data`), Xoshiro256's four words.
        public var rngState: [UInt64]
        public var adamSteps: Int
        public var bestValidationLoss: Double?
        /// Name and float count of each section, in file order.
        public var sections: [Section]
        /// Small state of other components (refinement policies), as JSON text.
        public var extra: [String: String]

        /// One section of Float32 values after the metadata.
        public struct Section: Codable, Equatable {
            public var name: String
            public var count: Int
        }
    }

    public static let magic: [UInt8] = Array("GFCKPT\r\n".utf8)
    /// The version written.
    public static let formatVersion: UInt32 = 2
    /// The versions read.
    public static let readableVersions: ClosedRange<UInt32> = 1...formatVersion

    public var metadata: Metadata
    /// Section name → values.
    public var sections: [String: [Float]]
    /// The format version the file was written in.
    public var version: UInt32
    /// The file it was read from (nil when made in memory): errors in restoring it name it.
    public var path: String?

    public init(metadata: Metadata, sections: [String: [Float]], version: UInt32 = formatVersion) {
        self.metadata = metadata
        self.sections = sections
        self.version = version
    }

    /// Writes atomically to `path`; refuses to replace a file that is not a checkpoint.
    /// Returns the number of bytes written.
    @discardableResult
    public static func write(path: String, metadata: Metadata,
                             sections: [(String, UnsafePointer<Float>, Int)], version: UInt32 = formatVersion) throws -> Int {
        var meta = metadata
        meta.sections = sections.map { Metadata.Section(name: $0.0, count: $0.2) }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let json = try encoder.encode(meta)
        var head = Data(magic)
        withUnsafeBytes(of: version.littleEndian) { head.append(contentsOf: $0) }
        withUnsafeBytes(of: UInt32(json.count).littleEndian) { head.append(contentsOf: $0) }
        head.append(json)

        let tmp = CheckpointFiles.temporaryPath(for: path, pid: getpid())
        let fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL, 0o644)
        guard fd >= 0 else { throw CheckpointError("\(tmp): cannot create (\(String(cString: strerror(errno))))") }
        var hash = FNV1a()
        var total = 0
        func put(_ raw: UnsafeRawBufferPointer) throws {
            hash.add(raw)
            var done = 0
            while done < raw.count {
                let n = Foundation.write(fd, raw.baseAddress! + done, raw.count - done)
                if n < 0 {
                    if errno == EINTR { continue }
                    throw CheckpointError("\(tmp): write failed (\(String(cString: strerror(errno))))")
                }
                done += n
            }
            total += raw.count
        }
        do {
            try head.withUnsafeBytes { try put($0) }
            for (_, ptr, count) in sections {
                try put(UnsafeRawBufferPointer(start: ptr, count: count * MemoryLayout<Float>.size))
            }
            var sum = hash.value.littleEndian
            try withUnsafeBytes(of: &sum) { raw in
                let n = Foundation.write(fd, raw.baseAddress!, 8)
                if n != 8 { throw CheckpointError("\(tmp): write failed") }
            }
            total += 8
            guard fsync(fd) == 0 else { throw CheckpointError("\(tmp): fsync failed") }
            close(fd)
        } catch {
            close(fd)
            unlink(tmp)
            throw error
        }
        if FileManager.default.fileExists(atPath: path) {
            // Only ever replace a checkpoint: never clobber some other file by mistake.
            if (try? readHead(path)) == nil {
                unlink(tmp)
                throw CheckpointError("\(path): exists and is not a gradflow checkpoint; refusing to overwrite it")
            }
        }
        guard rename(tmp, path) == 0 else {
            unlink(tmp)
            throw CheckpointError("\(path): cannot move checkpoint into place (\(String(cString: strerror(errno))))")
        }
        let dir = (path as NSString).deletingLastPathComponent
        let dfd = open(dir.isEmpty ? "." : dir, O_RDONLY)
        if dfd >= 0 { fsync(dfd); close(dfd) }
        return total
    }

    /// Checks the magic and version only (cheap).
    static func readHead(_ path: String) throws -> UInt32 {
        guard let h = FileHandle(forReadingAtPath: path) else { throw CheckpointError("\(path): cannot be read") }
        defer { try? h.close() }
        let d = h.readData(ofLength: 12)
        guard d.count == 12, Array(d.prefix(8)) == magic else {
            throw CheckpointError("\(path): not a gradflow checkpoint (bad magic number)")
        }
        return d.subdata(in: 8..<12).withUnsafeBytes { $0.loadUnaligned(as: UInt32.self).littleEndian }
    }

    /// Reads and verifies a checkpoint: magic, version, length and checksum.
    public static func read(path: String) throws -> Checkpoint {
        try decode(try fileBytes(path), path: path)
    }

    /// The bytes of a checkpoint file, unverified (`decode` checks them).
    public static func fileBytes(_ path: String) throws -> [UInt8] {
        guard FileManager.default.fileExists(atPath: path) else {
            throw CheckpointError("\(path): no such checkpoint file")
        }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw CheckpointError("\(path): cannot be read (check permissions)")
        }
        return [UInt8](data)
    }

    /// Verifies and decodes a checkpoint's bytes (read elsewhere, e.g. by rank 0 of a
    /// data-parallel run and sent to the others); `path` names it in errors.
    public static func decode(_ bytes: [UInt8], path: String) throws -> Checkpoint {
        guard bytes.count >= 16, Array(bytes[0..<8]) == magic else {
            throw CheckpointError("\(path): not a gradflow checkpoint (bad magic number)")
        }
        func u32(_ at: Int) -> UInt32 {
            UInt32(bytes[at]) | UInt32(bytes[at + 1]) << 8 | UInt32(bytes[at + 2]) << 16 | UInt32(bytes[at + 3]) << 24
        }
        let version = u32(8)
        guard readableVersions.contains(version) else {
            throw CheckpointError("\(path): checkpoint format version \(version); this gradflow reads versions \(readableVersions.lowerBound)–\(readableVersions.upperBound)")
        }
        let metaLength = Int(u32(12))
        guard 16 + metaLength + 8 <= bytes.count else {
            throw CheckpointError("\(path): truncated (\(bytes.count) bytes; the header alone needs \(16 + metaLength + 8))")
        }
        let meta: Metadata
        do {
            meta = try JSONDecoder().decode(Metadata.self, from: Data(bytes[16..<(16 + metaLength)]))
        } catch {
            throw CheckpointError("\(path): metadata is unreadable (\(error))")
        }
        let floats = meta.sections.reduce(0) { $0 + $1.count }
        let expected = 16 + metaLength + floats * 4 + 8
        guard bytes.count == expected else {
            throw CheckpointError("\(path): truncated or padded (\(bytes.count) bytes, expected \(expected))")
        }
        var hash = FNV1a()
        bytes.withUnsafeBytes { hash.add(UnsafeRawBufferPointer(rebasing: $0[0..<(expected - 8)])) }
        var stored: UInt64 = 0
        for k in 0..<8 { stored |= UInt64(bytes[expected - 8 + k]) << (8 * UInt64(k)) }
        guard stored == hash.value else {
            throw CheckpointError("\(path): checksum mismatch (the file is corrupt)")
        }
        var sections: [String: [Float]] = [:]
        var at = 16 + metaLength
        bytes.withUnsafeBytes { raw in
            for s in meta.sections {
                var values = [Float](repeating: 0, count: s.count)
                values.withUnsafeMutableBytes { dst in
                    dst.copyMemory(from: UnsafeRawBufferPointer(rebasing: raw[at..<(at + s.count * 4)]))
                }
                sections[s.name] = values
                at += s.count * 4
            }
        }
        var ckpt = Checkpoint(metadata: meta, sections: sections, version: version)
        ckpt.path = path
        return ckpt
    }
}
