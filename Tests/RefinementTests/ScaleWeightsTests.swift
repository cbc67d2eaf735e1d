import Testing
import Refinement

@Suite("Scale weights")
struct ScaleWeightsTests {
    private func weights() -> ScaleWeights {
        ScaleWeights(layers: 4, contextBands: .standard(window: 128), depthGroups: 3)
    }

    @Test("everything starts at 1 with every axis off")
    func initialState() {
        let w = weights()
        #expect(w.context == Array(repeating: [1, 1, 1], count: 4))
        #expect(w.time == .unit)
        #expect(w.depth == [1, 1, 1])
        #expect(ScaleAxis.allCases.allSatisfy { w.mode($0) == .off })
    }

    @Test("a manual set returns the old value, switches the axis to manual, and can target one layer")
    func manualSet() throws {
        var w = weights()
        do { let old = try w.set(.context, band: 2, to: 1.5).get(); #expect(old == 1) }
        #expect(w.context.map { $0[2] } == [1.5, 1.5, 1.5, 1.5])
        #expect(w.mode(.context) == .manual)
        do { let old = try w.set(.context, band: 2, layer: 3, to: 2).get(); #expect(old == 1.5) }
        #expect(w.context.map { $0[2] } == [1.5, 1.5, 1.5, 2])
        do { let old = try w.set(.time, band: 0, to: 0).get(); #expect(old == 1) }
        #expect(w.time.high == 0)
        do { let old = try w.set(.depth, band: 1, to: 10).get(); #expect(old == 1) }
        #expect(w.weight(.depth, band: 1) == 10)
    }

    @Test("out-of-bounds values, unknown bands and stray layers are refused with a reason")
    func refusals() {
        var w = weights()
        let cases: [(ScaleAxis, Int, Int?, Double, String)] = [
            (.context, 0, nil, 12, "outside the manual range [0.05, 10]"),
            (.context, 0, nil, 0, "outside the manual range [0.05, 10]"),
            (.time, 2, nil, 6.5, "outside the manual range [0, 6]"),
            (.depth, 0, nil, 0.05, "outside the manual range [0.1, 10]"),
            (.context, 3, nil, 1, "there is no band 3"),
            (.context, 0, 4, 1, "there is no layer 4"),
            (.time, 0, 1, 1, "only the context axis has weights per layer"),
            (.depth, 0, nil, .nan, "finite"),
        ]
        for (axis, band, layer, value, expected) in cases {
            switch w.set(axis, band: band, layer: layer, to: value) {
            case .success: Issue.record("\(axis) band \(band) = \(value) was accepted")
            case .failure(let reason): #expect(reason.message.contains(expected), "\(reason.message)")
            }
        }
        #expect(w == weights(), "a refused change changes nothing")
    }

    @Test("switching to adaptive clamps into the adaptive bounds; policy outputs are clamped and need adaptive mode")
    func adaptiveClamping() throws {
        var w = weights()
        _ = w.set(.context, band: 0, to: 8)
        _ = w.set(.time, band: 0, to: 0)
        _ = w.set(.depth, band: 2, to: 0.1)
        do { let adopted = w.adopt(depth: [3, 3, 3]); #expect(!adopted, "a manual axis ignores the policy") }
        w.setMode(.context, .adaptive)
        w.setMode(.time, .adaptive)
        w.setMode(.depth, .adaptive)
        #expect(w.context[0][0] == 4)
        #expect(w.time.high == 0.25)
        #expect(w.depth[2] == 0.5)
        do { let adopted = w.adopt(depth: [3, 0.1, 1.2]); #expect(adopted) }
        #expect(w.depth == [2, 0.5, 1.2])
        do { let adopted = w.adopt(time: TimeWeights(high: 2, mid: 0.5, low: 9)); #expect(adopted) }
        #expect(w.time == TimeWeights(high: 1, mid: 1, low: 4))
        do { let adopted = w.adopt(context: Array(repeating: [0.1, 1, 100], count: 4)); #expect(adopted) }
        #expect(w.context[2] == [0.5, 1, 4])
        do { let adopted = w.adopt(context: [[1, 1, 1]]); #expect(!adopted, "wrong shape") }
        #expect(w.bounds(.time, band: 0) == AxisBounds.timeHighAdaptive)
    }
}
