import Foundation

/// Memory that holds bytes read-only and stays valid while referenced: a file mapped with mmap
/// (unmapped when the last reference goes), the embedded corpus's literal, or an owned copy.
final class ByteStorage: @unchecked Sendable {
    let base: UnsafePointer<UInt8>?
    let count: Int
    /// Whether the bytes are a file's pages mapped into memory (not a private copy).
    let isMapped: Bool
    private let release: (@Sendable () -> Void)?

    init(base: UnsafePointer<UInt8>?, count: Int, isMapped: Bool, release: (@Sendable () -> Void)?) {
        self.base = base
        self.count = count
        self.isMapped = isMapped
        self.release = release
    }

    deinit { release?() }

    /// An owned copy of `bytes` (small data: tests, generated excerpts, a pipe's contents).
    static func copy(_ bytes: [UInt8]) -> ByteStorage {
        guard !bytes.isEmpty else { return ByteStorage(base: nil, count: 0, isMapped: false, release: nil) }
        let p = UnsafeMutablePointer<UInt8>.allocate(capacity: bytes.count)
        p.initialize(from: bytes, count: bytes.count)
        let address = UInt(bitPattern: p)
        return ByteStorage(base: UnsafePointer(p), count: bytes.count, isMapped: false) {
            UnsafeMutablePointer<UInt8>(bitPattern: address)?.deallocate()
        }
    }

    /// Bytes that live as long as the process (a static literal); nothing is copied.
    static func unowned(_ base: UnsafePointer<UInt8>, count: Int) -> ByteStorage {
        ByteStorage(base: base, count: count, isMapped: false, release: nil)
    }

    /// Maps the regular file open on `fd` read-only (MAP_PRIVATE: clean file-backed pages that the
    /// kernel can drop and read again, never private memory). `MADV_RANDOM`: training reads short
    /// windows at random offsets, so read-ahead would only fill the page cache. Nil when mmap fails.
    static func map(fd: Int32, count: Int) -> ByteStorage? {
        guard count > 0 else { return ByteStorage(base: nil, count: 0, isMapped: true, release: nil) }
        guard let raw = mmap(nil, count, PROT_READ, MAP_PRIVATE, fd, 0), raw != UnsafeMutableRawPointer(bitPattern: -1) else {
            return nil
        }
        _ = madvise(raw, count, MADV_RANDOM)
        let address = UInt(bitPattern: raw)
        return ByteStorage(base: UnsafePointer(raw.assumingMemoryBound(to: UInt8.self)), count: count, isMapped: true) {
            _ = munmap(UnsafeMutableRawPointer(bitPattern: address), count)
        }
    }
}

/// A read-only sequence of bytes made of pieces (parts of mapped files, the embedded literal,
/// small owned copies) that reads as one: concatenating or slicing copies no bytes, so a corpus
/// larger than memory costs only the pages that training touches, and those are the page cache's.
public struct ByteView: Sendable {
    struct Piece: Sendable {
        let storage: ByteStorage
        let offset: Int
        let count: Int
        var pointer: UnsafePointer<UInt8> { storage.base! + offset }
    }

    private(set) var pieces: [Piece] = []
    /// `ends[i]`: the offset just past piece i (cumulative counts), for a binary search.
    private var ends: [Int] = []
    public private(set) var count = 0

    public init() {}

    /// A view of a copy of `bytes`.
    public init(_ bytes: [UInt8]) {
        self.init(storage: .copy(bytes), range: 0..<bytes.count)
    }

    init(storage: ByteStorage, range: Range<Int>) {
        append(Piece(storage: storage, offset: range.lowerBound, count: range.count))
    }

    private mutating func append(_ piece: Piece) {
        guard piece.count > 0 else { return }
        pieces.append(piece)
        count += piece.count
        ends.append(count)
    }

    public var isEmpty: Bool { count == 0 }

    /// Whether every byte is a mapped file's (no private copy).
    public var isMapped: Bool { pieces.allSatisfy(\.storage.isMapped) }

    public static func + (a: ByteView, b: ByteView) -> ByteView {
        var out = a
        for p in b.pieces { out.append(p) }
        return out
    }

    /// The bytes in `range` (offsets into this view), without copying.
    public func slice(_ range: Range<Int>) -> ByteView {
        precondition(range.lowerBound >= 0 && range.upperBound <= count, "slice \(range) of \(count) bytes")
        var out = ByteView()
        guard !range.isEmpty else { return out }
        var i = pieceIndex(range.lowerBound)
        var position = range.lowerBound
        while position < range.upperBound {
            let p = pieces[i], start = ends[i] - p.count
            let from = position - start, to = min(p.count, range.upperBound - start)
            out.append(Piece(storage: p.storage, offset: p.offset + from, count: to - from))
            position = start + to
            i += 1
        }
        return out
    }

    /// The first `n` bytes (all when there are fewer).
    public func prefix(_ n: Int) -> ByteView { slice(0..<min(max(n, 0), count)) }

    /// The piece that holds byte `offset` (0 ≤ offset < count).
    private func pieceIndex(_ offset: Int) -> Int {
        var lo = 0, hi = ends.count - 1
        while lo < hi {
            let mid = (lo + hi) / 2
            if ends[mid] > offset { hi = mid } else { lo = mid + 1 }
        }
        return lo
    }

    public subscript(offset: Int) -> UInt8 {
        precondition(offset >= 0 && offset < count, "byte \(offset) of \(count)")
        let i = pieceIndex(offset)
        return pieces[i].pointer[offset - (ends[i] - pieces[i].count)]
    }

    /// Calls `body` with `n` consecutive bytes from `start`: a pointer into the mapping when they
    /// lie in one piece (nearly always), else a temporary copy of a window that crosses a seam.
    public func withBytes<R>(from start: Int, count n: Int, _ body: (UnsafeBufferPointer<UInt8>) -> R) -> R {
        precondition(start >= 0 && n >= 0 && start + n <= count, "bytes \(start)..<\(start + n) of \(count)")
        if n == 0 { return body(UnsafeBufferPointer(start: nil, count: 0)) }
        let i = pieceIndex(start)
        let p = pieces[i], local = start - (ends[i] - p.count)
        if local + n <= p.count { return body(UnsafeBufferPointer(start: p.pointer + local, count: n)) }
        var copy = [UInt8](repeating: 0, count: n)
        copy.withUnsafeMutableBufferPointer { copyBytes(from: start, into: $0) }
        return copy.withUnsafeBufferPointer(body)
    }

    /// Copies `destination.count` bytes from `start` into `destination`.
    public func copyBytes(from start: Int, into destination: UnsafeMutableBufferPointer<UInt8>) {
        var written = 0
        var position = start
        var i = pieceIndex(start)
        while written < destination.count {
            let p = pieces[i], local = position - (ends[i] - p.count)
            let n = min(p.count - local, destination.count - written)
            (destination.baseAddress! + written).update(from: p.pointer + local, count: n)
            written += n
            position += n
            i += 1
        }
    }

    /// Asks the kernel to read the mapped pages of `range` ahead (MADV_WILLNEED); a hint only.
    public func willNeed(_ range: Range<Int>) {
        guard !range.isEmpty else { return }
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        var i = pieceIndex(range.lowerBound)
        var position = range.lowerBound
        while position < range.upperBound && i < pieces.count {
            let p = pieces[i], start = ends[i] - p.count
            let from = position - start, to = min(p.count, range.upperBound - start)
            if p.storage.isMapped {
                let address = Int(bitPattern: p.pointer + from)
                let aligned = address & ~(page - 1)
                _ = madvise(UnsafeMutableRawPointer(bitPattern: aligned), to - from + (address - aligned), MADV_WILLNEED)
            }
            position = start + to
            i += 1
        }
    }

    /// Calls `body` with each piece's bytes in order.
    public func forEachPiece(_ body: (UnsafeBufferPointer<UInt8>) -> Void) {
        for p in pieces { body(UnsafeBufferPointer(start: p.pointer, count: p.count)) }
    }

    /// A copy of all the bytes (small data only: a corpus may not fit in memory).
    public var array: [UInt8] {
        var out = [UInt8]()
        out.reserveCapacity(count)
        forEachPiece { out.append(contentsOf: $0) }
        return out
    }
}
