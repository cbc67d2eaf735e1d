import Foundation
import Telemetry
import Terminal
import Themes

/// Measures how long one frame takes to render with a long history (`gradflow bench dashboard`).
public enum DashboardBenchmark {
    /// Folds `steps` synthetic steps (plus evals and events) into a state, then renders `frames`
    /// frames at width×height. Returns the median frame time and the bytes of bounded history.
    public static func run(steps: Int, width: Int, height: Int, frames: Int) -> (medianMilliseconds: Double, historyBytes: Int) {
        let r = measure(steps: steps, width: width, height: height, frames: frames)
        return (r.medianMilliseconds, r.historyBytes)
    }

    /// Frame times measured two ways: wall clock, and CPU time of the rendering thread (which a
    /// busy machine does not inflate).
    public struct Result: Sendable {
        public var medianMilliseconds: Double
        public var cpuMedianMilliseconds: Double
        public var historyBytes: Int
    }

    public static func measure(steps: Int, width: Int, height: Int, frames: Int) -> Result {
        var state = DashboardState(mode: .live, canControl: true, colorModeLabel: "truecolour")
        _ = state.apply(.header(SyntheticRun.header(totalSteps: steps)))
        _ = state.apply(.resize(Size(width: width, height: height)))
        var i = 1
        while i <= steps {
            let chunk = SyntheticRun.records(steps: Swift.min(10_000, steps - i + 1)).map { r -> Record in
                shifted(r, by: i - 1)
            }
            _ = state.apply(.records(chunk))
            i += 10_000
        }
        let theme = Theme.default
        var wall: [Double] = []
        var cpu: [Double] = []
        for f in 0..<Swift.max(1, frames) {
            state.smoothingIndex = f % 2 == 0 ? 0 : 1
            let c0 = threadCPUSeconds()
            let t0 = DispatchTime.now().uptimeNanoseconds
            let canvas = DashboardView.render(state, size: Size(width: width, height: height), theme: theme)
            let t1 = DispatchTime.now().uptimeNanoseconds
            let c1 = threadCPUSeconds()
            precondition(canvas.width == width)
            wall.append(Double(t1 - t0) / 1e6)
            cpu.append((c1 - c0) * 1e3)
        }
        wall.sort()
        cpu.sort()
        return Result(medianMilliseconds: wall[wall.count / 2], cpuMedianMilliseconds: cpu[cpu.count / 2],
                      historyBytes: state.data.historyBytes)
    }

    private static func threadCPUSeconds() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }

    private static func shifted(_ r: Record, by offset: Int) -> Record {
        guard offset > 0 else { return r }
        switch r {
        case var .step(s): s.step += offset; return .step(s)
        case var .eval(e): e.step += offset; return .eval(e)
        case var .event(e): e.step += offset; return .event(e)
        case var .checkpoint(c): c.step += offset; return .checkpoint(c)
        case var .end(e): e.step += offset; return .end(e)
        case var .system(s): s.step += offset; return .system(s)
        }
    }
}

extension RunData {
    /// Bytes held by the bounded histories (series storage, events, markers).
    public var historyBytes: Int {
        let series = [trainLoss, tokensPerSecond] + validation + shares + weights + flip + cosine + longMass
        let seriesBytes = series.reduce(0) { $0 + $1.memoryBytes }
        let eventBytes = events.reduce(0) { $0 + MemoryLayout<EventEntry>.stride + $1.text.utf8.count }
        return seriesBytes + eventBytes + markers.count * MemoryLayout<WeightMarker>.stride
    }
}
