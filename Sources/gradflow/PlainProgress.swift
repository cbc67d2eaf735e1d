import Foundation
import Telemetry

/// Prints the run as plain lines: one per reporting interval, one per eval, event and checkpoint.
struct PlainProgress {
    let header: RunHeader
    let reportEvery: Int?

    func follow(_ sub: BusSubscription) {
        var lastPrint = Date.distantPast
        var lastVal: [DomainEval] = []
        while true {
            let batch = sub.wait(timeout: 0.5)
            if batch.isEmpty && sub.isFinished { return }
            for r in batch {
                switch r {
                case let .step(s):
                    let due = reportEvery.map { (s.step + 1) % $0 == 0 } ?? (Date().timeIntervalSince(lastPrint) >= 1)
                    if due || s.step == 0 || s.step + 1 == header.totalSteps {
                        lastPrint = Date()
                        print(stepLine(s, val: lastVal))
                    }
                case let .eval(e):
                    lastVal = e.domains
                    let parts = e.domains.map { String(format: "%@ %.4f (%.3f bpb)", $0.name, $0.loss, $0.bitsPerByte) }
                    let gains = e.contextGain.map { String(format: "ΔL(%d) %.3f", $0.window, $0.delta) }
                    print("eval @\(e.step): " + (parts + gains).joined(separator: "  "))
                case let .event(ev):
                    print("event @\(ev.step): \(ev.kind.rawValue) \(ev.message)")
                case let .checkpoint(c):
                    print(String(format: "checkpoint @%d: %@ (%.1f MB, %.0f ms)", c.step, c.path, Double(c.bytes) / 1e6, c.milliseconds))
                case let .end(e):
                    print("end @\(e.step): \(e.reason.rawValue)" + (e.finalLoss.map { String(format: " · final train %.4f", $0) } ?? "")
                          + (e.bestValidationLoss.map { String(format: " · best val %.4f", $0) } ?? ""))
                }
            }
        }
    }

    func stepLine(_ s: StepRecord, val: [DomainEval]) -> String {
        let total = header.totalSteps
        let remaining = Double(total - s.step - 1) * s.stepMilliseconds / 1000
        var line = String(format: "step %5d/%d  loss %.4f  lr %.2e  %6.0f tok/s  %@ · ETA %@",
                          s.step + 1, total, s.loss, s.learningRate, s.tokensPerSecond,
                          duration(s.t) as NSString, duration(remaining) as NSString)
        if let v = val.first { line += String(format: "  val %.4f", v.loss) }
        return line
    }

    func duration(_ s: Double) -> String {
        let t = Int(s.rounded())
        return t >= 3600 ? String(format: "%dh%02dm", t / 3600, (t % 3600) / 60) : String(format: "%dm%02ds", t / 60, t % 60)
    }
}
