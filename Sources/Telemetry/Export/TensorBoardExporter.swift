import RunFormat
import Foundation

/// Writes a TensorBoard event file of scalar summaries, readable by TensorBoard's EventAccumulator.
///
/// The file is a TFRecord stream (per record: little-endian UInt64 length, masked CRC32C of the
/// length, the bytes, masked CRC32C of the bytes) of `tensorflow.Event` protobufs: a first event
/// with `file_version = "brain.Event:2"`, then one event per step record and one per eval, each
/// with a `Summary` of `simple_value` scalars. Tags are the CSV column names with "/" for "."
/// (`train/loss`, `context/local/weight`, `oscillation/lower/flip_rate`,
/// `attention/long_range_mass`, `val/sonnets/loss`, …; per-layer and per-head attention columns
/// are left out to keep TensorBoard's tag list readable).
///
/// Protobuf by hand instead of swift-protobuf: four messages and six fields are used, and their
/// wire encoding is a few lines (`ProtoWriter`); generating code would need protoc and building
/// protoc-gen-swift (about 10 minutes here) and another dependency for every build. A test reads
/// the output back with the real `tensorboard` package (docs/FORMAT.md).
public enum TensorBoardExporter {
    /// The file name inside the output directory: fixed by the run's start time, so exporting the
    /// same run twice finds the first export (and refuses without `force`).
    public static func fileName(for header: RunHeader) -> String {
        "events.out.tfevents.\(Int(header.startTime.isFinite ? header.startTime : 0)).gradflow"
    }

    /// The event file an export of `run` into `directory` writes.
    public static func outputPath(run: String, directory: String) throws -> String {
        outputPath(header: try RunFileReader(path: run).header, directory: directory)
    }

    static func outputPath(header: RunHeader, directory: String) -> String {
        (directory as NSString).appendingPathComponent(fileName(for: header))
    }

    /// Exports `run` into directory `directory` (created if needed). Returns the event file's path.
    @discardableResult
    public static func export(run: String, to directory: String, force: Bool = false) throws -> String {
        var (header, layout, _, replaced) = try ColumnLayout.scanNotingReplaced(path: run)
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw RunFileError(.io, path: directory, "cannot create the output directory: \(error.localizedDescription)")
        }
        let path = outputPath(header: header, directory: directory)
        let handle = try OutputFile.create(path, force: force)
        defer { try? handle.close() }
        var out = ChunkedWriter(handle)
        // (column, tag, is a twin column), worked out once for every step record.
        let twinColumns = Set(ColumnLayout.twinNames)
        let stepTags = layout.stepNames.enumerated().filter { !$0.element.hasPrefix("attention_mass.") && !$0.element.hasPrefix("context_energy.") }
            .map { ($0.offset, tag($0.element), twinColumns.contains($0.element)) }
        let evalTags = layout.evalNames.map(tag)
        let start = header.startTime.isFinite ? header.startTime : 0

        out.write(bytes: frame(event(wallTime: start, step: 0, fileVersion: "brain.Event:2", values: [])))
        let reader = try RunFileReader(path: run)
        try reader.forEachRecord { r in
            guard replaced.keep(r) else { return }
            switch r {
            case let .step(s):
                let v = layout.values(s)
                // Twin columns only exist inside twin windows: no NaN points outside them.
                let values = stepTags.filter { !($0.2 && v[$0.0].isNaN) }.map { ($0.1, v[$0.0]) }
                out.write(bytes: frame(event(wallTime: start + s.t, step: Int64(s.step), values: values)))
            case let .eval(e):
                let v = layout.values(e)
                let values = zip(evalTags, v).filter { !$0.1.isNaN }.map { ($0.0, $0.1) }
                out.write(bytes: frame(event(wallTime: start + e.t, step: Int64(e.step), values: values)))
            case let .event(e) where e.verdict != nil:
                let values = ColumnLayout.verdictValues(e).filter { !$0.1.isNaN }.map { (tag($0.0), $0.1) }
                out.write(bytes: frame(event(wallTime: start + e.t, step: Int64(e.step), values: values)))
            default:
                break
            }
        }
        out.flush()
        return path
    }

    /// "context.local.weight" → "context/local/weight"; the first columns go under "train/".
    static func tag(_ column: String) -> String {
        column.contains(".") ? column.replacingOccurrences(of: ".", with: "/") : "train/" + column
    }

    /// An `Event` message: wall_time = 1 (double), step = 2 (int64), file_version = 3 (string),
    /// summary = 5 (Summary { repeated Value value = 1 }, Value { string tag = 1; float simple_value = 2 }).
    static func event(wallTime: Double, step: Int64, fileVersion: String? = nil, values: [(String, Double)]) -> [UInt8] {
        var e = ProtoWriter()
        e.double(field: 1, wallTime)
        e.varint(field: 2, UInt64(bitPattern: step))
        if let fileVersion { e.bytes(field: 3, Array(fileVersion.utf8)) }
        if !values.isEmpty {
            var summary = ProtoWriter()
            for (tag, value) in values {
                var v = ProtoWriter()
                v.bytes(field: 1, Array(tag.utf8))
                v.float(field: 2, Float(value))
                summary.bytes(field: 1, v.bytes)
            }
            e.bytes(field: 5, summary.bytes)
        }
        return e.bytes
    }

    /// TFRecord framing of one record.
    static func frame(_ data: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(data.count + 16)
        var length = UInt64(data.count).littleEndian
        let lengthBytes = withUnsafeBytes(of: &length) { Array($0) }
        out += lengthBytes
        out += le32(CRC32C.masked(lengthBytes))
        out += data
        out += le32(CRC32C.masked(data))
        return out
    }

    static func le32(_ v: UInt32) -> [UInt8] {
        [UInt8(v & 0xFF), UInt8((v >> 8) & 0xFF), UInt8((v >> 16) & 0xFF), UInt8(v >> 24)]
    }
}

/// The protobuf wire format, for the few field kinds the TensorBoard export uses.
struct ProtoWriter {
    var bytes: [UInt8] = []

    mutating func rawVarint(_ v: UInt64) {
        var v = v
        while v >= 0x80 {
            bytes.append(UInt8(v & 0x7F) | 0x80)
            v >>= 7
        }
        bytes.append(UInt8(v))
    }

    mutating func key(_ field: Int, _ wireType: UInt64) { rawVarint(UInt64(field) << 3 | wireType) }

    mutating func varint(field: Int, _ v: UInt64) {
        key(field, 0)
        rawVarint(v)
    }

    mutating func double(field: Int, _ v: Double) {
        key(field, 1)
        var bits = v.bitPattern.littleEndian
        withUnsafeBytes(of: &bits) { bytes += $0 }
    }

    mutating func float(field: Int, _ v: Float) {
        key(field, 5)
        var bits = v.bitPattern.littleEndian
        withUnsafeBytes(of: &bits) { bytes += $0 }
    }

    mutating func bytes(field: Int, _ v: [UInt8]) {
        key(field, 2)
        rawVarint(UInt64(v.count))
        bytes += v
    }
}

/// CRC-32C (Castagnoli), as TFRecord uses it, with TensorFlow's masking.
enum CRC32C {
    static let table: [UInt32] = (0..<256).map { i -> UInt32 in
        var c = UInt32(i)
        for _ in 0..<8 { c = c & 1 != 0 ? (c >> 1) ^ 0x82F6_3B78 : c >> 1 }
        return c
    }

    static func checksum(_ data: [UInt8]) -> UInt32 {
        var c: UInt32 = 0xFFFF_FFFF
        for b in data { c = table[Int((c ^ UInt32(b)) & 0xFF)] ^ (c >> 8) }
        return c ^ 0xFFFF_FFFF
    }

    static func masked(_ data: [UInt8]) -> UInt32 {
        let c = checksum(data)
        return ((c >> 15) | (c << 17)) &+ 0xA282_EAD8
    }
}
