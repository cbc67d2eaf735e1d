import RunFormat
import Foundation

/// How far a recording goes, read from the end of its run file (cheap at any size): the replay
/// header's "step N of M recorded".
public enum RecordingExtent {
    /// Bytes read from the end of the file; a run file's records are far shorter.
    static let tailBytes = 1 << 18

    /// The step of the last complete record of the run file at `path` (a file or run folder), or
    /// nil when none can be read. A torn last line is skipped like the reader skips it.
    public static func lastStep(path: String) -> Int? {
        guard let record = lastRecord(path: path) else { return nil }
        if case let .step(s) = record { return s.stepsCompleted }
        return record.step
    }

    /// The last complete record of the run file at `path` (a file or run folder), read from the
    /// end of the file at scalar detail; nil when none can be read.
    public static func lastRecord(path: String) -> Record? {
        guard let file = try? RunFileLocation.resolve(path), let handle = FileHandle(forReadingAtPath: file) else { return nil }
        defer { try? handle.close() }
        guard let size = try? handle.seekToEnd() else { return nil }
        let start = size > UInt64(tailBytes) ? size - UInt64(tailBytes) : 0
        guard (try? handle.seek(toOffset: start)) != nil, let data = try? handle.readToEnd() else { return nil }
        var lines = data.split(separator: 0x0A, omittingEmptySubsequences: true)
        if start > 0, !lines.isEmpty { lines.removeFirst() }  // may begin mid-line
        for line in lines.reversed() {
            if let record = try? Array(line).withUnsafeBufferPointer({ try RecordDecoder.record($0, stepDetail: .scalars) }) {
                return record
            }
        }
        return nil
    }
}
