import Foundation
import Testing
@testable import RunFormat
@testable import Telemetry

private func steps(_ n: Int, dt: Double) -> [Record] {
    (0..<n).map { i in
        .step(StepRecord(step: i, t: Double(i) * dt, loss: 2, learningRate: 1e-3, gradNorm: 1, clipScale: 1, tokensPerSecond: 1, stepMilliseconds: 1))
    }
}

/// Plays `dir` at `speed` to its end and returns the seconds it took; expects `count` records.
private func timedReplay(_ dir: String, speed: Double, maxGap: Double = 2, count: Int,
                         sourceLocation: SourceLocation = #_sourceLocation) throws -> Double {
    let bus = RecordBus()
    let sub = bus.subscribe(name: "t")
    let replayer = try Replayer(path: dir, bus: bus, speed: speed, maxGap: maxGap)
    defer { replayer.stop() }
    let t0 = Date()
    replayer.start()
    #expect(collect(sub, timeout: 60).count == count, sourceLocation: sourceLocation)
    return Date().timeIntervalSince(t0)
}

private func collect(_ sub: BusSubscription, timeout: Double = 60) -> [Record] {
    var out: [Record] = []
    let deadline = Date(timeIntervalSinceNow: timeout)
    while Date() < deadline {
        let batch = sub.wait(timeout: 0.05)
        out += batch
        if batch.isEmpty && sub.isFinished { break }
    }
    return out
}

private func waitFor(_ condition: () -> Bool, timeout: Double = 60) -> Bool {
    let deadline = Date(timeIntervalSinceNow: timeout)
    while Date() < deadline {
        if condition() { return true }
        Thread.sleep(forTimeInterval: 0.01)
    }
    return condition()
}

@Suite("Replayer")
struct ReplayerTests {
    @Test("speed 0 publishes the header and every record in order, then closes the bus")
    func fastest() throws {
        let dir = Fixtures.tempDirectory()
        defer { Fixtures.cleanup(dir) }
        let records = Fixtures.records(steps: 30)
        let path = try Fixtures.writeRun(in: dir, records: records)
        let bus = RecordBus()
        let sub = bus.subscribe(name: "t", capacity: 10_000)
        let replayer = try Replayer(path: dir, bus: bus, speed: 0)
        replayer.start()
        let got = collect(sub)
        #expect(sub.header == Fixtures.header())
        #expect(got == records)
        #expect(waitFor { replayer.status.finished })
        #expect(replayer.status.position == records.last!.step)
        replayer.stop()
        _ = path
    }

    @Test("records come at the recorded pace divided by the speed, with long gaps cut")
    func pace() throws {
        let dir = Fixtures.tempDirectory()
        defer { Fixtures.cleanup(dir) }
        _ = try Fixtures.writeRun(in: dir, records: steps(11, dt: 0.1))   // 1 s recorded
        // The lower bounds are the pace; a busy machine can only make a replay slower, so the
        // upper bounds are backstops, and ×10 need only beat ×1 as measured here.
        var tookAtSpeed1 = Double.infinity
        for (speed, lo) in [(1.0, 0.9), (10.0, 0.08)] {
            let took = try timedReplay(dir, speed: speed, count: 11)
            let hi = speed == 1 ? 30 : tookAtSpeed1
            #expect(took >= lo && took < hi, "speed \(speed) took \(took) s")
            if speed == 1 { tookAtSpeed1 = took }
        }
        let gapDir = Fixtures.tempDirectory()
        defer { Fixtures.cleanup(gapDir) }
        _ = try Fixtures.writeRun(in: gapDir, records: steps(3, dt: 1000))
        // Two cut gaps take about 0.1 s; 10 s is a busy machine's backstop that a cut to even 5 s
        // per gap would miss.
        let took = try timedReplay(gapDir, speed: 1, maxGap: 0.05, count: 3)
        #expect(took < 10, "gaps of 1,000 s are cut to 0.05 s, but the replay took \(took) s")

        // Only gaps are cut: a recording longer than maxGap whose records are close together
        // still plays at its pace (the cut measured from the start once let every record after
        // maxGap seconds through at once).
        let steadyTook = try timedReplay(dir, speed: 1, maxGap: 0.3, count: 11)
        #expect(steadyTook >= 0.9, "1 s of records 0.1 s apart took \(steadyTook) s with maxGap 0.3")
    }

    @Test("pause holds, step-once publishes one record, seek forward skips ahead at once")
    func pauseStepSeek() throws {
        let dir = Fixtures.tempDirectory()
        defer { Fixtures.cleanup(dir) }
        _ = try Fixtures.writeRun(in: dir, records: steps(100, dt: 1))   // 100 s at speed 1
        let bus = RecordBus()
        let sub = bus.subscribe(name: "t", capacity: 1000)
        let replayer = try Replayer(path: dir, bus: bus, speed: 1)
        replayer.perform(.togglePause)
        #expect(replayer.status.paused)
        replayer.start()
        Thread.sleep(forTimeInterval: 0.2)
        #expect(sub.drain().isEmpty)
        replayer.perform(.stepOnce)
        #expect(waitFor { replayer.status.position == 0 && !sub.drain().isEmpty } || replayer.status.position == 0)
        replayer.perform(.stepOnce)
        #expect(waitFor { replayer.status.position == 1 })
        Thread.sleep(forTimeInterval: 0.1)
        #expect(replayer.status.position == 1)
        replayer.perform(.seek(steps: 50))
        #expect(waitFor { replayer.status.position == 51 })
        let seen = sub.drain().map(\.step)
        #expect(seen.last == 51 && seen == Array((seen.first ?? 0)...51))
        replayer.stop()
    }

    @Test("seek backward restarts the stream and bumps the generation")
    func seekBack() throws {
        let dir = Fixtures.tempDirectory()
        defer { Fixtures.cleanup(dir) }
        let records = steps(50, dt: 0.001)
        _ = try Fixtures.writeRun(in: dir, records: records)
        let bus = RecordBus()
        let sub = bus.subscribe(name: "t", capacity: 1000)
        let replayer = try Replayer(path: dir, bus: bus, speed: 0)
        replayer.start()
        #expect(collect(sub) == records)
        #expect(waitFor { replayer.status.finished })
        replayer.perform(.togglePause)
        replayer.perform(.seek(steps: -30))      // from 49 back to 19
        #expect(waitFor { replayer.status.generation == 1 && replayer.status.position == 19 })
        let batch = sub.drainBatch()
        #expect(batch.generation == 1)
        #expect(batch.records.map(\.step) == Array(0...19))
        #expect(!replayer.status.finished)
        replayer.perform(.togglePause)
        #expect(collect(sub).map(\.step) == Array(20...49))
        replayer.stop()
    }

    @Test("faster and slower walk the speed ladder, with 0 (max) above the top")
    func ladder() {
        #expect(Replayer.faster(1) == 2 && Replayer.faster(2) == 5 && Replayer.faster(1000) == 0 && Replayer.faster(0) == 0)
        #expect(Replayer.slower(0) == 1000 && Replayer.slower(1) == 0.5 && Replayer.slower(0.1) == 0.1)
        #expect(Replayer.faster(3) == 5 && Replayer.slower(3) == 2)
    }

    @Test("follow mode replays a file that is still being written")
    func follow() throws {
        let dir = Fixtures.tempDirectory()
        defer { Fixtures.cleanup(dir) }
        let path = dir + "/run.jsonl"
        let writer = try RunFileWriter.create(path: path, header: Fixtures.header())
        let bus = RecordBus()
        let sub = bus.subscribe(name: "t", capacity: 1000)
        let replayer = try Replayer(path: path, bus: bus, speed: 0, follow: true)
        replayer.start()
        let records = Fixtures.records(steps: 20)
        for r in records.prefix(10) { try writer.append(r) }
        Thread.sleep(forTimeInterval: 0.2)
        #expect(!replayer.status.finished)
        for r in records.dropFirst(10) { try writer.append(r) }
        try writer.close()
        #expect(collect(sub) == records)
        replayer.stop()
    }
}
