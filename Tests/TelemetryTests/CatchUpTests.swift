import Foundation
import Testing
@testable import RunFormat
@testable import Telemetry

/// One step record's line as the writer encodes it (without the newline).
private func line(_ r: Record) -> [UInt8] {
    var bytes = RecordEncoder().encodeCopy(r)
    if bytes.last == 0x0A { bytes.removeLast() }
    return bytes
}

private func decode(_ bytes: [UInt8], _ detail: RecordDecoder.StepDetail, checked: Bool) throws -> Record {
    try bytes.withUnsafeBufferPointer { try RecordDecoder.record($0, stepDetail: detail, checksSkippedNumbers: checked) }
}

private func stepOf(_ r: Record) -> StepRecord? {
    if case let .step(s) = r { return s }
    return nil
}

/// How `gradflow attach` reads a long run's history fast: the `.history` detail, arrays passed by
/// their brackets, and the reader's catch-up sampling (docs/PERFORMANCE.md, "Attach").
@Suite("Catching up with a long run")
struct CatchUpTests {
    @Test("the history detail keeps the per-layer attention mass and drops the per-head and context arrays")
    func historyDetail() throws {
        for record in Fixtures.records(steps: 20) {
            guard let full = stepOf(record) else { continue }
            let got = try #require(stepOf(try decode(line(record), .history, checked: true)))
            #expect(got.attentionMass == full.attentionMass && !got.attentionMass.isEmpty)
            #expect(got.attentionMassByHead.isEmpty && got.contextEnergyByLayer.isEmpty)
            var expected = full
            expected.attentionMassByHead = []
            expected.contextEnergyByLayer = []
            #expect(got == expected)
        }
    }

    @Test("passing arrays by their brackets builds the same records as checking every number")
    func bracketSkipAgreesWithTheCheckedSkip() throws {
        for record in Fixtures.records(steps: 40) {
            for detail in [RecordDecoder.StepDetail.scalars, .noLayerArrays, .history, .full] {
                let bytes = line(record)
                #expect(try decode(bytes, detail, checked: false) == decode(bytes, detail, checked: true))
            }
        }
    }

    @Test("a bracket-passed array still has to close, and strings or objects in it take the checked path")
    func bracketSkipLimits() throws {
        func skip(_ text: String, checked: Bool) throws -> Int {
            let bytes = Array(text.utf8)
            return try bytes.withUnsafeBufferPointer { buf in
                var s = JSONScanner(buf)
                s.checksSkippedNumbers = checked
                try s.skipValue()
                return s.offset
            }
        }
        // Ends where the checked skip ends, nested or not, and with a string inside.
        for text in ["[1,2,3],", "[[1,2],[3,[4,5]],[]],", "[]]", "[[0.5,1e-3],[\"a]\",2]],", "[{\"k\":[1]},2],"] {
            #expect(try skip(text, checked: false) == skip(text, checked: true), "\(text)")
        }
        // An array that never closes is an error either way.
        for text in ["[1,2", "[[1,2],[3"] {
            #expect(throws: JSONSyntaxError.self) { try skip(text, checked: false) }
        }
        // The documented cost: a malformed number in a passed array is not noticed.
        #expect(throws: JSONSyntaxError.self) { try skip("[1..2]", checked: true) }
        #expect(try skip("[1..2]", checked: false) == 6)
    }

    @Test("a reader catching up builds every step's scalars, a sample at history detail, and the tail in full")
    func readerCatchUp() throws {
        let dir = Fixtures.tempDirectory()
        defer { Fixtures.cleanup(dir) }
        let records = Fixtures.records(steps: 6000)
        let path = try Fixtures.writeRun(in: dir, records: records)
        for chunk in [4096, 1 << 16, 4 << 20] {
            let reader = try RunFileReader(path: path, chunkBytes: chunk)
            reader.catchUp = .init(detail: .scalars, sampleEvery: 7, sampleDetail: .history, checksSkippedNumbers: false)
            var got: [Record] = []
            try reader.forEachRecord { got.append($0) }
            #expect(got.count == records.count && reader.issueCount == 0)
            var sampled = 0, scalarsOnly = 0
            for (r, original) in zip(got, records) {
                guard let s = stepOf(r), let o = stepOf(original) else {
                    #expect(r == original)  // evals, events, checkpoints and the end in full
                    continue
                }
                #expect(s.step == o.step && s.loss == o.loss && s.t == o.t && s.spike == o.spike && s.twin == o.twin)
                if s == o { continue }
                if !s.attentionMass.isEmpty {
                    #expect(s.attentionMass == o.attentionMass && s.axes == o.axes && s.oscillation == o.oscillation)
                    sampled += 1
                } else {
                    #expect(s.axes.isEmpty && s.oscillation.isEmpty)
                    scalarsOnly += 1
                }
            }
            // About one in seven of the history at history detail, the rest at scalar detail.
            #expect(sampled > 0 && scalarsOnly > 5 * sampled, "chunk \(chunk): \(sampled) sampled, \(scalarsOnly) scalars")
            // The latest step record is whole, as the dashboard's per-head view needs.
            let lastStep = try #require(got.last { stepOf($0) != nil })
            #expect(lastStep == records.last { stepOf($0) != nil })
        }
    }

    @Test("without catching up, a reader reads every record whole at any chunk size")
    func wholeAtAnyChunkSize() throws {
        let dir = Fixtures.tempDirectory()
        defer { Fixtures.cleanup(dir) }
        let records = Fixtures.records(steps: 3000)
        let path = try Fixtures.writeRun(in: dir, records: records)
        for chunk in [16, 4096, 1 << 16, 4 << 20] {
            let reader = try RunFileReader(path: path, chunkBytes: chunk)
            var got: [Record] = []
            try reader.forEachRecord { got.append($0) }
            #expect(got == records, "chunk \(chunk)")
        }
    }

    @Test("a replay at full speed waits for a slow observer instead of dropping step records")
    func replayDropsNothing() throws {
        let dir = Fixtures.tempDirectory()
        defer { Fixtures.cleanup(dir) }
        let records = Fixtures.records(steps: 2000)
        _ = try Fixtures.writeRun(in: dir, records: records)
        let bus = RecordBus()
        let sub = bus.subscribe(name: "slow", capacity: 16)
        let replayer = try Replayer(path: dir, bus: bus, speed: 0)
        replayer.start()
        var got: [Record] = []
        let deadline = Date(timeIntervalSinceNow: 120)
        while Date() < deadline {
            let batch = sub.wait(timeout: 0.05, max: 5)
            got += batch
            if batch.isEmpty && sub.isFinished { break }
            if got.count % 200 < 5 { Thread.sleep(forTimeInterval: 0.001) }  // a slow fold now and then
        }
        replayer.stop()
        #expect(sub.dropped == 0)
        #expect(got == records)
    }
}
