import Model
import Testing
@testable import Training

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

    @Test func inductionWindowsRepeatTheSpanWithItsPeriod() throws {
        let task = try #require(try SyntheticTask.parse("synthetic:induction:16"))
        #expect(task.alphabet == 16)
        #expect(task.name == "induction:16")
        #expect(try SyntheticTask.parse("synthetic:induction")?.alphabet == SyntheticTask.defaultAlphabet)
        var rng = Xoshiro256(seed: 3)
        var perBand = [0, 0, 0]
        let symbols = Set(SyntheticTask.symbols.prefix(16))
        for _ in 0..<90 {
            let w = task.window(T: 128, rng: &rng)
            #expect(w.bytes.count == 129)
            #expect(w.bytes.allSatisfy(symbols.contains))
            let d = try #require(w.answers.first?.distance)
            let P = d + 1
            // The whole window has period P; the answers are every input position from P on.
            for i in P...128 { #expect(w.bytes[i] == w.bytes[i - P]) }
            #expect(w.answers.map(\.position) == Array(P..<128))
            #expect(w.answers.count >= SyntheticTask.inductionMinimumAnswers)
            for a in w.answers {
                #expect(a.distance == d)
                #expect(task.bandRanges(T: 128)[a.band].contains(a.distance))
                // The input byte recurs P back, and the byte after that one is the target.
                #expect(w.bytes[a.position] == w.bytes[a.position - P])
                #expect(w.bytes[a.position + 1] == w.bytes[a.position - a.distance])
                perBand[a.band] += 1
            }
        }
        #expect(perBand.allSatisfy { $0 > 200 })
        // Two windows of the same task differ; the spec's alphabet is checked.
        #expect(task.window(T: 64, rng: &rng).bytes != task.window(T: 64, rng: &rng).bytes)
        #expect(throws: DataError.self) { try SyntheticTask.parse("synthetic:induction:1") }
        #expect(throws: DataError.self) { try SyntheticTask.parse("synthetic:induction:63") }
        #expect(throws: DataError.self) { try SyntheticTask.parse("synthetic:induction:x") }
        #expect(throws: DataError.self) { try SyntheticTask.parse("synthetic:copy:16") }
        // Different alphabets are different data sets (name and hash).
        #expect(task.dataset.hash != SyntheticTask(kind: .induction).dataset.hash)
        #expect(task.dataset.name == "synthetic-induction-16")
        #expect(SyntheticTask(kind: .recall).dataset.name == "synthetic-recall")
    }

    @Test func validationWindowsAreFixed() {
        let task = SyntheticTask(kind: .recall)
        #expect(task.validationWindow(3, T: 64).bytes == task.validationWindow(3, T: 64).bytes)
        #expect(task.validationWindow(3, T: 64).bytes != task.validationWindow(4, T: 64).bytes)
    }
}
