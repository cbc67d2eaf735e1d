import Foundation
import Model

/// A synthetic long-range task the trainer generates itself (`--data synthetic:NAME`): every
/// window is drawn fresh, and only the answer positions carry loss (a per-position loss mask).
///
/// - `recall` (associative recall): lowercase filler with key/value pairs `Kd` (an uppercase key,
///   a digit value, keys distinct in a window) and later queries `?K` whose next byte is the value.
///   The answer is scored at the query key, which must attend back to the pair's value.
/// - `copy`: lowercase filler with one run of 4 uppercase letters and, later, a delimiter `|`
///   followed by the same run. Every copied letter is an answer.
/// - `induction` (dense induction copy): lowercase filler with `|` and a span of N distinct
///   uppercase letters (N = 16, or `synthetic:induction:N`), and later `|` followed by the same
///   span. Every byte of the repeat after its `|` is an answer (N per window): the current byte
///   (the `|` or a span letter) occurs exactly once before, and the answer is the byte after that
///   occurrence, so one content match (an induction head) finds it at any distance. Near spans
///   (distance below N) are shortened so the two occurrences do not overlap.
/// - `repeat` (dense periodic induction): P distinct bytes (drawn from 128…255, so no two are
///   alike) repeated with period P to the end of the window; every input position from P on is an
///   answer (T − P per window, at least 8): its byte occurred P back (and every P before that), and
///   the byte that followed it there is the answer. `synthetic:repeat:D` draws only distances of
///   at least D (e.g. 65: the long band alone, so that position offsets learned for near distances
///   cannot stand in for a content match).
/// - `lookup` (class-keyed lookup): lowercase filler with 8 needles, one byte from each of 8
///   disjoint classes of 16 bytes (class c is 128 + 16c … 128 + 16c + 15), and later, for each
///   class, a query digit `c` whose next byte is that class's needle. The answer is scored at the
///   query digit and must attend back to the only byte of its class: one content match (the
///   query's class against the needle's), no composition of heads, so a two-layer model can learn
///   it at any distance. The distance is query position − needle position.
///
/// The distance of an answer is the attention distance it needs (answer position − position of
/// the byte to retrieve); items are placed so that every context band (local/phrase/long, the
/// trainer's band edges) gets answers, which lets accuracy be reported per band.
public struct SyntheticTask: Sendable, Equatable {
    /// Which generator (`synthetic:NAME`).
    public enum Kind: String, Sendable, CaseIterable {
        case recall
        case copy
        case induction
        case `repeat`
        case lookup
    }

    public var kind: Kind
    /// Upper inclusive distance edges of every band but the last (default 8, 64).
    public var edges: [Int]
    /// Letters in an induction span (`synthetic:induction:N`; at most 26, distinct).
    public var span: Int
    /// Span of `synthetic:induction` without `:N`.
    public static let defaultSpan = 16
    /// Length of the copied run (copy task).
    public static let copyLength = 4
    /// Shortest distance a `repeat` window draws (`synthetic:repeat:D`; default 1).
    public var minimumDistance: Int
    /// Needle classes of a `lookup` window (one needle and one query each), and the bytes per class.
    public static let lookupClasses = 8, lookupClassSize = 16
    /// Fewest answers of a `repeat` window (so its longest distance is T − 1 − this).
    public static let repeatMinimumAnswers = 8
    /// Seed of the generated validation windows (fixed, so every run sees the same ones).
    public static let validationSeed: UInt64 = 0x5EED_0F_7A5C

    public init(kind: Kind, edges: [Int] = [8, 64], span: Int = SyntheticTask.defaultSpan, minimumDistance: Int = 1) {
        self.kind = kind
        self.edges = edges
        self.span = span
        self.minimumDistance = minimumDistance
    }

    /// Parses `synthetic:recall`, `synthetic:copy`, `synthetic:lookup`, `synthetic:induction[:N]`
    /// (N: span letters, 1–26) or `synthetic:repeat[:D]` (D: shortest distance, 1–119); nil when `spec` is not a synthetic spec.
    public static func parse(_ spec: String) throws -> SyntheticTask? {
        guard spec.hasPrefix("synthetic:") else { return nil }
        let parts = spec.dropFirst("synthetic:".count).split(separator: ":", omittingEmptySubsequences: false).map(String.init)
        guard let kind = Kind(rawValue: parts[0]) else {
            throw DataError("--data \(spec): unknown synthetic task '\(parts[0])'; expected one of \(Kind.allCases.map { "synthetic:" + $0.rawValue }.joined(separator: ", ")) (synthetic:induction:N sets its span, synthetic:repeat:D its shortest distance)")
        }
        guard parts.count > 1 else { return SyntheticTask(kind: kind) }
        if kind == .repeat, parts.count == 2, let n = Int(parts[1]), (1...119).contains(n) {
            return SyntheticTask(kind: kind, minimumDistance: n)
        }
        guard kind == .induction, parts.count == 2, let n = Int(parts[1]), (1...26).contains(n) else {
            throw DataError("--data \(spec): expected synthetic:induction:N with a span of N letters, 1...26, or synthetic:repeat:D with a shortest distance D, 1...119; recall, copy and lookup take no parameter")
        }
        return SyntheticTask(kind: kind, span: n)
    }

    /// The spec that names this task (`synthetic:induction:N` when the span is not the default).
    public var name: String {
        if kind == .induction && span != Self.defaultSpan { return "\(kind.rawValue):\(span)" }
        if kind == .repeat && minimumDistance != 1 { return "\(kind.rawValue):\(minimumDistance)" }
        return kind.rawValue
    }

    /// The data set that generates this task's windows.
    public var dataset: ByteDataset {
        // `spec(datasetName:)` inverts this name.
        var d = ByteDataset(name: "synthetic-" + name.replacingOccurrences(of: ":", with: "-"), path: "(generated)", files: [])
        var h = FNV1a()
        h.add(Array("synthetic:\(name):\(edges)".utf8))
        d.hash = h.hex
        d.task = self
        return d
    }

    /// The spec of the task whose `dataset` is named `datasetName` ("synthetic-induction-12" →
    /// "synthetic:induction:12"); nil for a name no synthetic task gives.
    public static func spec(datasetName: String) -> String? {
        let prefix = "synthetic-"
        guard datasetName.hasPrefix(prefix) else { return nil }
        let spec = "synthetic:" + datasetName.dropFirst(prefix.count).replacingOccurrences(of: "-", with: ":")
        return (try? parse(spec)) != nil ? spec : nil
    }

    /// The bands (inclusive distance ranges) usable in a window of T bytes, in order.
    public func bandRanges(T: Int) -> [ClosedRange<Int>] {
        var ranges: [ClosedRange<Int>] = []
        var lo = 0
        for e in edges where e < T - 1 && e >= lo {
            ranges.append(lo...e)
            lo = e + 1
        }
        if lo <= T - 1 { ranges.append(lo...(T - 1)) }
        return ranges
    }

    /// Names of the bands of `bandRanges` (local, phrase, long; b3… beyond three).
    public func bandNames(T: Int) -> [String] {
        let n = bandRanges(T: T).count
        let names = n == 2 ? ["local", "long"] : ["local", "phrase", "long"]
        return (0..<n).map { $0 < names.count && n <= 3 ? names[$0] : "b\($0)" }
    }

    /// One answer of a window: input position `position` predicts the answer byte (targets[position]).
    public struct Answer: Sendable, Equatable {
        public var position: Int
        public var distance: Int
        public var band: Int
    }

    /// One window of T + 1 bytes (inputs are bytes[0..<T], targets bytes[1...T]) and its answers.
    public struct Window: Sendable {
        public var bytes: [UInt8]
        public var answers: [Answer]
    }

    /// Draws one window of T + 1 bytes: lowercase filler, then the task's generator places its
    /// items and answers.
    public func window(T: Int, rng: inout Xoshiro256) -> Window {
        var w = Draft(bytes: (0...T).map { _ in UInt8(ascii: "a") + UInt8(rng.below(26)) }, T: T, ranges: bandRanges(T: T))
        switch kind {
        case .recall: w.recall(rng: &rng)
        case .copy: w.copy(rng: &rng)
        case .induction: w.induction(span: span, rng: &rng)
        case .repeat: w.periodic(minimumDistance: minimumDistance, rng: &rng)
        case .lookup: w.lookup(rng: &rng)
        }
        return Window(bytes: w.bytes, answers: w.answers)
    }

    /// A window being generated: its bytes, the positions items took, the answers so far.
    private struct Draft {
        var bytes: [UInt8]
        let T: Int
        let ranges: [ClosedRange<Int>]
        var used: [Bool]
        var answers: [Answer] = []

        init(bytes: [UInt8], T: Int, ranges: [ClosedRange<Int>]) {
            self.bytes = bytes
            self.T = T
            self.ranges = ranges
            used = [Bool](repeating: false, count: T + 1)
        }

        func free(_ positions: [Int]) -> Bool { positions.allSatisfy { $0 >= 0 && $0 <= T && !used[$0] } }

        mutating func recall(rng: inout Xoshiro256) {
            // Pair at p (key, value); query at q ('?', key) with the value at q + 2. The answer is
            // scored at input position q + 1 (the key) and must retrieve the value at p + 1.
            var keys = Array(0..<26).map { UInt8(ascii: "A") + UInt8($0) }
            let items = max(1, min(26, T / 16))
            for i in 0..<items {
                let band = i % ranges.count
                let r = ranges[band]
                let lo = max(r.lowerBound, 2), hi = min(r.upperBound, T - 2)
                guard lo <= hi else { continue }
                for _ in 0..<20 {
                    let d = lo + rng.below(hi - lo + 1)
                    // value at p+1, answer position a = q+1, distance a − (p+1) = q − p = d.
                    let q = d + rng.below(max(1, T - 1 - d))
                    let p = q - d
                    guard q + 2 <= T, free([p, p + 1, q, q + 1, q + 2]) else { continue }
                    let k = keys.remove(at: rng.below(keys.count))
                    let v = UInt8(ascii: "0") + UInt8(rng.below(10))
                    bytes[p] = k; bytes[p + 1] = v
                    bytes[q] = UInt8(ascii: "?"); bytes[q + 1] = k; bytes[q + 2] = v
                    for x in [p, p + 1, q, q + 1, q + 2] { used[x] = true }
                    answers.append(Answer(position: q + 1, distance: d, band: band))
                    break
                }
                if keys.isEmpty { break }
            }
        }

        mutating func copy(rng: inout Xoshiro256) {
            let L = SyntheticTask.copyLength
            // Run at p..p+L−1, '|' at q−1, copy at q..q+L−1. Input position q−1+i predicts copy
            // letter i and must retrieve p+i: distance d − 1 with d = q − p.
            let usable = ranges.enumerated().filter { max($0.element.lowerBound, L) <= min($0.element.upperBound, T - L) }
            if let pick = usable.isEmpty ? nil : usable[rng.below(usable.count)] {
                let lo = max(pick.element.lowerBound, L), hi = min(pick.element.upperBound, T - L)
                let dist = lo + rng.below(hi - lo + 1)
                let d = dist + 1
                let p = rng.below(max(1, T + 1 - L - d))
                let q = p + d
                for i in 0..<L {
                    let c = UInt8(ascii: "A") + UInt8(rng.below(26))
                    bytes[p + i] = c
                    bytes[q + i] = c
                    answers.append(Answer(position: q - 1 + i, distance: dist, band: pick.offset))
                }
                bytes[q - 1] = UInt8(ascii: "|")
            }
        }

        mutating func induction(span N: Int, rng: inout Xoshiro256) {
            // '|' at p−1, span at p..<p+L, '|' at p−1+d, repeat at p+d..<p+d+L. Input position
            // p−1+d+i (the second '|' or span letter i−1) predicts span letter i, which follows the
            // same byte's first occurrence at p−1+i: distance d − 1. d ≤ T − N keeps a full span in
            // the window; a near span (d ≤ N) has L = d − 1 letters so the occurrences do not overlap.
            let usable = ranges.enumerated().filter { max($0.element.lowerBound, 1) <= min($0.element.upperBound, T - N - 1) }
            if let pick = usable.isEmpty ? nil : usable[rng.below(usable.count)] {
                let lo = max(pick.element.lowerBound, 1), hi = min(pick.element.upperBound, T - N - 1)
                let dist = lo + rng.below(hi - lo + 1)
                let d = dist + 1
                let L = min(N, d - 1)
                let p = 1 + rng.below(T + 1 - d - L)
                var letters = Array(UInt8(ascii: "A")...UInt8(ascii: "Z"))
                bytes[p - 1] = UInt8(ascii: "|")
                bytes[p - 1 + d] = UInt8(ascii: "|")
                for i in 0..<L {
                    let c = letters.remove(at: rng.below(letters.count))
                    bytes[p + i] = c
                    bytes[p + d + i] = c
                    answers.append(Answer(position: p - 1 + d + i, distance: dist, band: pick.offset))
                }
            }
        }

        /// The `repeat` task.
        mutating func periodic(minimumDistance: Int, rng: inout Xoshiro256) {
            // Period P = distance + 1: bytes[i] = bytes[i − P] from P on. Input position t ≥ P holds
            // a repeat of bytes[t − P]; its target bytes[t + 1] sits at t + 1 − P, distance P − 1.
            let maxDistance = min(T - 1 - SyntheticTask.repeatMinimumAnswers, 127)
            let shortest = min(minimumDistance, maxDistance)
            let usable = ranges.enumerated().filter { max($0.element.lowerBound, shortest) <= min($0.element.upperBound, maxDistance) }
            if let pick = usable.isEmpty ? nil : usable[rng.below(usable.count)] {
                let lo = max(pick.element.lowerBound, shortest), hi = min(pick.element.upperBound, maxDistance)
                let dist = lo + rng.below(hi - lo + 1)
                let P = dist + 1
                var symbols = Array(UInt8(128)...UInt8(255))
                for i in 0...T {
                    bytes[i] = i < P ? symbols.remove(at: rng.below(symbols.count)) : bytes[i - P]
                }
                for t in P..<T { answers.append(Answer(position: t, distance: dist, band: pick.offset)) }
            }
        }

        mutating func lookup(rng: inout Xoshiro256) {
            // Needle of class c at p; query digit c at q, its answer byte (the needle) at q + 1.
            // Input position q predicts the needle at p: distance q − p. Class c's band is
            // (c + shift) mod the band count, with a shift drawn per window, so every band gets
            // answers and no class is tied to one band.
            let shift = rng.below(ranges.count)
            for c in 0..<SyntheticTask.lookupClasses {
                let band = (c + shift) % ranges.count
                let r = ranges[band]
                let lo = max(r.lowerBound, 1), hi = min(r.upperBound, T - 1)
                guard lo <= hi else { continue }
                for _ in 0..<50 {
                    let d = lo + rng.below(hi - lo + 1)
                    let q = d + rng.below(T - d)          // q ≤ T − 1, so the answer q + 1 ≤ T
                    let p = q - d
                    guard free([p, q, q + 1]) else { continue }
                    let needle = UInt8(128 + SyntheticTask.lookupClassSize * c + rng.below(SyntheticTask.lookupClassSize))
                    bytes[p] = needle
                    bytes[q] = UInt8(ascii: "0") + UInt8(c)
                    bytes[q + 1] = needle
                    for x in [p, q, q + 1] { used[x] = true }
                    answers.append(Answer(position: q, distance: d, band: band))
                    break
                }
            }
        }
    }

    /// The validation window number `index` (the same in every run).
    public func validationWindow(_ index: Int, T: Int) -> Window {
        var rng = Xoshiro256(seed: Self.validationSeed &+ UInt64(index) &* 0x9E37_79B9_7F4A_7C15)
        return window(T: T, rng: &rng)
    }

    /// Writes a window into row `b` of inputs/targets/mask.
    public static func fill(_ w: Window, row b: Int, T: Int, inputs: UnsafeMutablePointer<Int32>,
                            targets: UnsafeMutablePointer<Int32>, mask: UnsafeMutablePointer<Float>?) {
        for t in 0..<T {
            inputs[b * T + t] = Int32(w.bytes[t])
            targets[b * T + t] = Int32(w.bytes[t + 1])
        }
        if let mask {
            (mask + b * T).update(repeating: 0, count: T)
            for a in w.answers { mask[b * T + a.position] = 1 }
        }
    }
}
