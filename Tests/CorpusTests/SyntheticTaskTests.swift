import Model
import Testing
@testable import Corpus

@Suite struct SyntheticTaskTests {
    @Test func recallWindowsPutAnswersInEveryBand() throws {
        let task = try #require(try SyntheticTask.parse("synthetic:recall"))
        #expect(task.bandRanges(T: 128) == [0...8, 9...64, 65...127])
        var rng = Xoshiro256(seed: 1)
        var perBand = [0, 0, 0]
        for _ in 0..<50 {
            let w = task.window(T: 128, rng: &rng)
            #expect(w.bytes.count == 129)
            for a in w.answers {
                perBand[a.band] += 1
                #expect(task.bandRanges(T: 128)[a.band].contains(a.distance))
                // Input at the answer position is the queried key, after '?'; the target is the value
                // stored right after the same key `distance` bytes earlier.
                let key = w.bytes[a.position], value = w.bytes[a.position + 1]
                #expect(w.bytes[a.position - 1] == UInt8(ascii: "?"))
                #expect(w.bytes[a.position - a.distance] == value)
                #expect(w.bytes[a.position - a.distance - 1] == key)
                #expect((UInt8(ascii: "0")...UInt8(ascii: "9")).contains(value))
            }
        }
        #expect(perBand.allSatisfy { $0 > 50 })
    }

    @Test func copyWindowsRepeatTheRunAtTheStatedDistance() throws {
        let task = try #require(try SyntheticTask.parse("synthetic:copy"))
        var rng = Xoshiro256(seed: 2)
        var bands = Set<Int>()
        for _ in 0..<60 {
            let w = task.window(T: 128, rng: &rng)
            #expect(w.answers.count == SyntheticTask.copyLength)
            for a in w.answers {
                bands.insert(a.band)
                // The answer's target is the byte `distance` positions before the answer position.
                #expect(w.bytes[a.position + 1] == w.bytes[a.position - a.distance])
                #expect((UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(w.bytes[a.position + 1]))
            }
            #expect(w.bytes[w.answers[0].position] == UInt8(ascii: "|"))
        }
        #expect(bands == [0, 1, 2])
        #expect(throws: DataError.self) { try SyntheticTask.parse("synthetic:nope") }
        #expect(try SyntheticTask.parse("plays.txt") == nil)
    }

    @Test func inductionWindowsRepeatAMarkedSpanOfDistinctLetters() throws {
        let task = try #require(try SyntheticTask.parse("synthetic:induction:12"))
        #expect(task.span == 12 && task.name == "induction:12")
        #expect(try SyntheticTask.parse("synthetic:induction")?.span == SyntheticTask.defaultSpan)
        var rng = Xoshiro256(seed: 3)
        var perBand = [0, 0, 0]
        let upper = UInt8(ascii: "A")...UInt8(ascii: "Z"), bar = UInt8(ascii: "|")
        for _ in 0..<90 {
            let w = task.window(T: 128, rng: &rng)
            #expect(w.bytes.count == 129)
            let first = try #require(w.answers.first)
            // Full spans beyond the near band; near spans are shortened to fit before the repeat.
            #expect(w.answers.count == min(12, first.distance))
            #expect(w.bytes[first.position] == bar && w.bytes.filter { $0 == bar }.count == 2)
            let letters = w.bytes.filter { upper.contains($0) }
            #expect(letters.count == 2 * w.answers.count)
            #expect(Set(letters).count == w.answers.count)
            for (i, a) in w.answers.enumerated() {
                #expect(a.position == first.position + i && a.distance == first.distance)
                #expect(task.bandRanges(T: 128)[a.band].contains(a.distance))
                // The input byte occurs once before; the byte after that occurrence is the target.
                #expect(w.bytes[a.position + 1] == w.bytes[a.position - a.distance])
                #expect(w.bytes[a.position - a.distance - 1] == w.bytes[a.position])
                #expect(w.bytes[..<a.position].filter { $0 == w.bytes[a.position] }.count == 1)
                #expect(upper.contains(w.bytes[a.position + 1]))
                perBand[a.band] += 1
            }
        }
        #expect(perBand.allSatisfy { $0 > 100 })
        #expect(throws: DataError.self) { try SyntheticTask.parse("synthetic:induction:0") }
        #expect(throws: DataError.self) { try SyntheticTask.parse("synthetic:induction:27") }
        #expect(throws: DataError.self) { try SyntheticTask.parse("synthetic:induction:x") }
        #expect(throws: DataError.self) { try SyntheticTask.parse("synthetic:copy:16") }
        // Different spans are different data sets (name and hash); the old tasks keep their names.
        #expect(task.dataset.hash != SyntheticTask(kind: .induction).dataset.hash)
        #expect(task.dataset.name == "synthetic-induction-12")
        #expect(SyntheticTask(kind: .recall).dataset.name == "synthetic-recall")
    }

    @Test func repeatWindowsArePeriodicWithDistinctBytes() throws {
        let task = try #require(try SyntheticTask.parse("synthetic:repeat"))
        var rng = Xoshiro256(seed: 4)
        var perBand = [0, 0, 0]
        for _ in 0..<90 {
            let w = task.window(T: 128, rng: &rng)
            #expect(w.bytes.count == 129)
            let d = try #require(w.answers.first?.distance)
            let P = d + 1
            // One period of distinct bytes from 128…255, then the same again to the end.
            #expect(Set(w.bytes[..<P]).count == P && w.bytes.allSatisfy { $0 >= 128 })
            for i in P...128 { #expect(w.bytes[i] == w.bytes[i - P]) }
            #expect(w.answers.map(\.position) == Array(P..<128))
            #expect(w.answers.count >= SyntheticTask.repeatMinimumAnswers)
            for a in w.answers {
                #expect(a.distance == d && task.bandRanges(T: 128)[a.band].contains(d))
                #expect(w.bytes[a.position + 1] == w.bytes[a.position - a.distance])
                perBand[a.band] += 1
            }
        }
        #expect(perBand.allSatisfy { $0 > 200 })
        // synthetic:repeat:D draws only distances of at least D: here the long band alone.
        let long = try #require(try SyntheticTask.parse("synthetic:repeat:65"))
        #expect(long.minimumDistance == 65 && long.name == "repeat:65" && long.dataset.hash != task.dataset.hash)
        for _ in 0..<30 {
            let w = long.window(T: 128, rng: &rng)
            #expect(!w.answers.isEmpty && w.answers.allSatisfy { $0.band == 2 && $0.distance >= 65 })
        }
        #expect(throws: DataError.self) { try SyntheticTask.parse("synthetic:repeat:0") }
        #expect(throws: DataError.self) { try SyntheticTask.parse("synthetic:repeat:x") }
        #expect(throws: DataError.self) { try SyntheticTask.parse("synthetic:recall:4") }
    }

    @Test func lookupQueriesFindTheOnlyEarlierByteOfTheirClass() throws {
        let task = try #require(try SyntheticTask.parse("synthetic:lookup"))
        #expect(task.kind == .lookup && task.name == "lookup")
        let classOf = { (b: UInt8) -> Int? in b >= 128 ? (Int(b) - 128) / SyntheticTask.lookupClassSize : nil }
        var rng = Xoshiro256(seed: 5)
        var perBand = [0, 0, 0]
        var classBands = Set<[Int]>()
        for _ in 0..<60 {
            let w = task.window(T: 128, rng: &rng)
            #expect(w.bytes.count == 129)
            #expect(w.answers.count == SyntheticTask.lookupClasses)
            classBands.insert(w.answers.map(\.band))
            for a in w.answers {
                // The query digit names the class; the target is the needle, distance back.
                let c = Int(w.bytes[a.position]) - Int(UInt8(ascii: "0"))
                #expect((0..<SyntheticTask.lookupClasses).contains(c))
                let needle = w.bytes[a.position + 1]
                #expect(classOf(needle) == c && w.bytes[a.position - a.distance] == needle)
                // The needle is the only byte of its class before the query.
                #expect(w.bytes[..<a.position].filter { classOf($0) == c }.count == 1)
                #expect(task.bandRanges(T: 128)[a.band].contains(a.distance) && a.distance >= 1)
                perBand[a.band] += 1
            }
            // Everything else is lowercase filler.
            let marked = Set(w.answers.flatMap { [$0.position, $0.position + 1, $0.position - $0.distance] })
            for (i, b) in w.bytes.enumerated() where !marked.contains(i) { #expect((97...122).contains(b)) }
        }
        // 8 answers per window over 3 bands, the classes' bands shifted per window.
        #expect(perBand.reduce(0, +) == 480 && perBand.allSatisfy { $0 >= 120 })
        #expect(classBands.count == 3)
        #expect(throws: DataError.self) { try SyntheticTask.parse("synthetic:lookup:4") }
    }

    @Test func aDatasetNameGivesBackItsSpec() throws {
        for spec in ["synthetic:recall", "synthetic:copy", "synthetic:lookup", "synthetic:induction", "synthetic:induction:8",
                     "synthetic:repeat", "synthetic:repeat:65"] {
            let task = try #require(try SyntheticTask.parse(spec))
            #expect(SyntheticTask.spec(datasetName: task.dataset.name) == spec)
        }
        #expect(SyntheticTask.spec(datasetName: "shakespeare") == nil)
        #expect(SyntheticTask.spec(datasetName: "synthetic-nope") == nil)
    }

    @Test func validationWindowsAreFixed() {
        let task = SyntheticTask(kind: .recall)
        #expect(task.validationWindow(3, T: 64).bytes == task.validationWindow(3, T: 64).bytes)
        #expect(task.validationWindow(3, T: 64).bytes != task.validationWindow(4, T: 64).bytes)
    }
}
