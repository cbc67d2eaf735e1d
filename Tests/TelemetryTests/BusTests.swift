import Foundation
import Testing
@testable import RunFormat
@testable import Telemetry

private func stepRecord(_ i: Int) -> Record {
    .step(StepRecord(step: i, t: Double(i), loss: 1, learningRate: 0, gradNorm: 0, clipScale: 1, tokensPerSecond: 0, stepMilliseconds: 0))
}

private func eventRecord(_ i: Int) -> Record {
    .event(EventRecord(step: i, t: Double(i), kind: .weight, source: .api))
}

@Suite("Record bus")
struct BusTests {
    @Test("publishing never waits for an observer that does not drain")
    func nonBlocking() {
        let bus = RecordBus()
        let sub = bus.subscribe(name: "stuck", capacity: 100)
        let start = Date()
        for i in 0..<200_000 { bus.publish(stepRecord(i)) }
        #expect(Date().timeIntervalSince(start) < 10)
        #expect(sub.dropped == 200_000 - 100)
        let kept = sub.drain()
        #expect(kept.count == 100)
        #expect(kept.first?.step == 199_900 && kept.last?.step == 199_999)  // the newest survive
    }

    @Test("when full, the oldest step record is dropped; evals and events never are")
    func dropOldestStepOnly() {
        let bus = RecordBus()
        let sub = bus.subscribe(name: "slow", capacity: 4)
        bus.publish(eventRecord(0))
        bus.publish(stepRecord(1))
        bus.publish(stepRecord(2))
        bus.publish(eventRecord(3))
        bus.publish(stepRecord(4))   // drops step 1
        bus.publish(eventRecord(5))  // drops step 2
        bus.publish(eventRecord(6))  // drops step 4
        bus.publish(eventRecord(7))  // no step left: grows past capacity
        #expect(sub.dropped == 3)
        #expect(sub.drain().map(\.step) == [0, 3, 5, 6, 7])
    }

    @Test("subscribers get the header, late ones too; close lets them drain and then finish")
    func headerAndClose() {
        let bus = RecordBus()
        let early = bus.subscribe(name: "early")
        bus.publishHeader(Fixtures.header())
        bus.publish(stepRecord(1))
        bus.publish(stepRecord(2))
        bus.close()
        bus.publish(stepRecord(3))   // after close: ignored
        let late = bus.subscribe(name: "late")
        #expect(early.header == Fixtures.header() && late.header == Fixtures.header())
        #expect(!early.isFinished)
        #expect(early.wait(timeout: 1).map(\.step) == [1, 2])
        #expect(early.isFinished)
        #expect(early.wait(timeout: 1).isEmpty)   // returns at once when closed and drained
        #expect(late.isFinished && late.drain().isEmpty)
    }

    @Test("wait returns after the timeout when nothing arrives, and wakes on publish")
    func waitTimeout() {
        let bus = RecordBus()
        let sub = bus.subscribe(name: "w")
        let t0 = Date()
        #expect(sub.wait(timeout: 0.1).isEmpty)
        #expect(Date().timeIntervalSince(t0) >= 0.09)
        DispatchQueue.global().asyncAfter(deadline: .now() + 0.05) { bus.publish(stepRecord(9)) }
        let t1 = Date()
        #expect(sub.wait(timeout: 5).map(\.step) == [9])
        #expect(Date().timeIntervalSince(t1) < 4)
        bus.unsubscribe(sub)
        bus.publish(stepRecord(10))
        #expect(sub.drain().isEmpty)
    }

    @Test("many publishers and observers at once: each observer sees every event, in order")
    func concurrency() {
        let bus = RecordBus()
        let subs = (0..<4).map { bus.subscribe(name: "s\($0)", capacity: 64) }
        let perPublisher = 20_000
        let results = Results(count: subs.count)
        let group = DispatchGroup()
        // Threads, not tasks: observers block in wait(), which must not starve the cooperative pool.
        for (k, sub) in subs.enumerated() {
            group.enter()
            Thread {
                var got: [Record] = []
                while true {
                    let batch = sub.wait(timeout: 0.05)
                    got += batch
                    if batch.isEmpty && sub.isFinished { break }
                }
                results.set(k, got)
                group.leave()
            }.start()
        }
        let publishers = DispatchGroup()
        for p in 0..<2 {
            publishers.enter()
            Thread {
                for i in 0..<perPublisher {
                    bus.publish(i % 100 == 0 ? eventRecord(p * 1_000_000 + i) : stepRecord(p * 1_000_000 + i))
                }
                publishers.leave()
            }.start()
        }
        #expect(publishers.wait(timeout: .now() + 60) == .success)
        bus.close()
        #expect(group.wait(timeout: .now() + 60) == .success)
        for (k, sub) in subs.enumerated() {
            let got = results.get(k)
            let events = got.filter { if case .event = $0 { return true }; return false }
            #expect(events.count == 2 * perPublisher / 100)
            for p in 0..<2 {
                let mine = got.map(\.step).filter { $0 / 1_000_000 == p }
                #expect(mine == mine.sorted())
            }
            #expect(got.count + sub.dropped == 2 * perPublisher)
        }
    }

    @Test("restart empties the queues and bumps the generation atomically with the records")
    func restart() {
        let bus = RecordBus()
        let sub = bus.subscribe(name: "r")
        bus.publish(stepRecord(1))
        bus.close()
        #expect(sub.generation == 0)
        bus.restart()
        bus.publish(stepRecord(2))
        let batch = sub.drainBatch()
        #expect(batch.generation == 1 && batch.records.map(\.step) == [2])
        #expect(!sub.isFinished)
    }
}

/// Results written by observer threads.
private final class Results: @unchecked Sendable {
    private let lock = NSLock()
    private var values: [[Record]]
    init(count: Int) { values = Array(repeating: [], count: count) }
    func set(_ i: Int, _ v: [Record]) { lock.lock(); values[i] = v; lock.unlock() }
    func get(_ i: Int) -> [Record] { lock.lock(); defer { lock.unlock() }; return values[i] }
}
