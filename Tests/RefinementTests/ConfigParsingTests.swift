import Testing
import Refinement

@Suite("Refinement flags")
struct ConfigParsingTests {
    private func error(_ flags: RefinementFlags) -> String {
        do {
            _ = try RefinementConfig(flags: flags)
            return "accepted"
        } catch {
            return "\(error)"
        }
    }

    @Test("no refinement flag: every axis off")
    func noFlags() throws {
        let config = try RefinementConfig(flags: RefinementFlags())
        #expect(config.isPlain)
        #expect(config == RefinementConfig())
        let setup = try config.resolve(window: 128, layers: 4)
        let weights = setup.initialWeights()
        #expect(ScaleAxis.allCases.allSatisfy { weights.mode($0) == .off })
        #expect(weights.context == Array(repeating: [1, 1, 1], count: 4))
    }

    @Test("good flags give weights, betas, groups and modes")
    func goodFlags() throws {
        let config = try RefinementConfig(flags: RefinementFlags(
            contextBands: "4, 32", contextWeights: "1,1,2", timeWeights: "0.5,1,2", timeBetas: "0.8,0.98",
            depthGroups: "2", depthWeights: "1.5,0.75", adaptive: "depth"))
        #expect(config.contextEdges == [4, 32])
        #expect(config.contextWeights == [1, 1, 2])
        #expect(config.timeWeights == TimeWeights(high: 0.5, mid: 1, low: 2))
        #expect(config.timeBetaFast == 0.8 && config.timeBetaSlow == 0.98)
        #expect(config.depthGroups == 2 && config.depthWeights == [1.5, 0.75])
        #expect(config.mode(.context) == .manual && config.mode(.time) == .manual && config.mode(.depth) == .adaptive)
        let setup = try config.resolve(window: 64, layers: 4)
        #expect(setup.contextBands.extents == ["0–4", "5–32", "33–63"])
        let weights = setup.initialWeights()
        #expect(weights.context[3] == [1, 1, 2])
        #expect(weights.time.high == 0.5)
        #expect(weights.mode(.depth) == .adaptive && weights.depth == [1.5, 0.75])
        #expect(try setup.depthGroups(tensorLayers: [-1, 0, 1, 2, 3, 4]) == [0, 0, 0, 1, 1, 1])
    }

    @Test("--adaptive all and --grokfast")
    func adaptiveAndGrokfast() throws {
        let all = try RefinementConfig(flags: RefinementFlags(adaptive: "all"))
        #expect(ScaleAxis.allCases.allSatisfy { all.mode($0) == .adaptive })
        let grokfast = try RefinementConfig(flags: RefinementFlags(adaptive: "context", grokfast: "0.98,2"))
        #expect(grokfast.timeBetaFast == 0.98 && grokfast.timeBetaSlow == 0.98)
        #expect(grokfast.timeWeights == TimeWeights(high: 1, mid: 1, low: 3))
        #expect(grokfast.mode(.time) == .manual && grokfast.mode(.context) == .adaptive && grokfast.mode(.depth) == .off)
        #expect(grokfast.grokfast == RefinementConfig.Grokfast(alpha: 0.98, lambda: 2))
        let lambda = try RefinementConfig(flags: RefinementFlags(adaptive: "time", timeLambda: "0.5"))
        #expect(lambda.timeLambda == 0.5 && all.timeLambda == nil)
    }

    @Test("each kind of bad flag names the flag and what was expected")
    func badFlags() {
        let cases: [(RefinementFlags, [String])] = [
            (RefinementFlags(contextBands: "8,x"), ["--context-bands", "whole number", "8,64"]),
            (RefinementFlags(contextBands: "64,8"), ["--context-bands", "strictly increasing"]),
            (RefinementFlags(contextBands: "8,,64"), ["--context-bands", "item 2", "empty"]),
            (RefinementFlags(contextBands: "8", contextWeights: "1,1,1"), ["--context-weights", "expected 2 weights"]),
            (RefinementFlags(contextWeights: "1,1,20"), ["--context-weights", "weight 3", "[0.05, 10]"]),
            (RefinementFlags(contextWeights: "1,1,nan"), ["--context-weights", "not a finite number"]),
            (RefinementFlags(timeWeights: "1,1"), ["--time-weights", "expected 3 weights"]),
            (RefinementFlags(timeWeights: "1,1,-1"), ["--time-weights", "[0, 6]"]),
            (RefinementFlags(timeWeights: "1,1,1", timeBetas: "0.99,0.9"), ["--time-betas", "must not exceed"]),
            (RefinementFlags(timeWeights: "1,1,1", timeBetas: "0.9,1"), ["--time-betas", "[0, 1)"]),
            (RefinementFlags(timeWeights: "1,1,1", timeBetas: "0.9"), ["--time-betas", "expected 2 betas"]),
            (RefinementFlags(timeBetas: "0.9,0.99"), ["--time-betas", "time axis is off"]),
            (RefinementFlags(depthGroups: "0"), ["--depth-groups", "≥ 1"]),
            (RefinementFlags(depthGroups: "two"), ["--depth-groups", "whole number"]),
            (RefinementFlags(depthGroups: "2", depthWeights: "1,1,1"), ["--depth-weights", "expected 2 weights"]),
            (RefinementFlags(depthWeights: "1,1,0"), ["--depth-weights", "[0.1, 10]"]),
            (RefinementFlags(adaptive: "context,width"), ["--adaptive", "\"width\"", "context, time, depth or all"]),
            (RefinementFlags(grokfast: "0.98"), ["--grokfast", "ALPHA,LAMBDA"]),
            (RefinementFlags(grokfast: "1.5,2"), ["--grokfast", "ALPHA", "[0, 1)"]),
            (RefinementFlags(grokfast: "0.98,9"), ["--grokfast", "LAMBDA", "[−1, 5]"]),
            (RefinementFlags(timeWeights: "1,1,2", grokfast: "0.98,2"), ["--grokfast", "--time-weights"]),
            (RefinementFlags(adaptive: "all", grokfast: "0.98,2"), ["--grokfast", "--adaptive time"]),
            (RefinementFlags(timeLambda: "1"), ["--time-lambda", "--adaptive time"]),
            (RefinementFlags(adaptive: "time", timeLambda: "4"), ["--time-lambda", "[1, 4]", "λ from 0 to 3"]),
            (RefinementFlags(adaptive: "time", timeLambda: "-0.5"), ["--time-lambda", "[1, 4]"]),
            (RefinementFlags(adaptive: "time", timeLambda: "1,2"), ["--time-lambda", "one number"]),
            (RefinementFlags(policyWarmup: "50"), ["--policy-warmup", "--adaptive context, depth"]),
            (RefinementFlags(adaptive: "time", policyWarmup: "50"), ["--policy-warmup", "--adaptive context, depth"]),
            (RefinementFlags(adaptive: "context", policyWarmup: "-1"), ["--policy-warmup", "whole number", "\"-1\""]),
        ]
        for (flags, expected) in cases {
            let message = error(flags)
            for fragment in expected {
                #expect(message.contains(fragment), "\(flags) → \(message)")
            }
        }
    }

    @Test("model-dependent checks at resolve name the flag")
    func resolveErrors() throws {
        func message(_ flags: RefinementFlags, window: Int = 128, layers: Int = 4) throws -> String {
            do {
                _ = try RefinementConfig(flags: flags).resolve(window: window, layers: layers)
                return "accepted"
            } catch {
                return "\(error)"
            }
        }
        let edge = try message(RefinementFlags(contextBands: "8,200"))
        #expect(edge.contains("--context-bands") && edge.contains("T = 128"))
        let smallWindow = try message(RefinementFlags(contextWeights: "1,1,2"), window: 32)
        #expect(smallWindow.contains("--context-weights") && smallWindow.contains("expected 2 weights"))
        // Bug: the parser checked the count against the three default bands of T ≥ 66 before the
        // window was known, so at T = 32 (two bands) no count was accepted.
        #expect(try message(RefinementFlags(contextWeights: "1,2"), window: 32) == "accepted", "T = 32 has two default bands")
        let tooFew = try message(RefinementFlags(contextWeights: "1,2"))
        #expect(tooFew.contains("--context-weights") && tooFew.contains("expected 3 weights"))
        let groups = try message(RefinementFlags(depthGroups: "5"))
        #expect(groups.contains("--depth-groups") && groups.contains("between 1 and 4"))
        #expect(try message(RefinementFlags(contextBands: "8,64", depthGroups: "4")) == "accepted")
        let depthWeights = try message(RefinementFlags(depthWeights: "1,1"))
        #expect(depthWeights.contains("--depth-weights") && depthWeights.contains("expected 3 weights")
            && depthWeights.contains("default for 4 layers"))
        #expect(try message(RefinementFlags(depthWeights: "1,1"), layers: 2) == "accepted", "2 layers: 2 groups by default")
    }

    @Test("the axis description carries names, extents, edges and both bound ranges")
    func descriptions() throws {
        let config = try RefinementConfig(flags: RefinementFlags(adaptive: "time"))
        let axes = try config.resolve(window: 128, layers: 4).axisDescriptions()
        #expect(axes.map(\.axis) == [.context, .time, .depth])
        #expect(axes.map(\.mode) == [.off, .adaptive, .off])
        #expect(axes[0].bands.map(\.name) == ["local", "phrase", "long"])
        #expect(axes[0].bands.map(\.extent) == ["0–8", "9–64", "65–127"])
        #expect(axes[0].edges == [8, 64])
        #expect(axes[0].bands[0].adaptive == WeightBounds(floor: 0.5, ceiling: 4))
        #expect(axes[0].bands[0].manual == WeightBounds(floor: 0.05, ceiling: 10))
        #expect(axes[1].bands.map(\.name) == ["high", "mid", "low"])
        #expect(axes[1].bands.map(\.extent) == ["β .90", "β .99", "m_s"])
        #expect(axes[1].edges == [0.9, 0.99])
        #expect(axes[1].bands[0].adaptive == WeightBounds(floor: 0.25, ceiling: 1))
        #expect(axes[2].bands.map(\.name) == ["lower", "middle", "upper"])
        #expect(axes[2].bands.map(\.extent) == ["L0–1", "L2", "L3+hd"])
        #expect(axes[2].edges == [2, 3])
        #expect(axes[2].bands[2].adaptive == WeightBounds(floor: 0.5, ceiling: 2))
    }

    @Test("one table: every flag has help text and its own field, and every field has a flag")
    func flagTable() {
        let table = RefinementFlags.table
        #expect(table.map(\.name) == ["--context-bands", "--context-weights", "--time-weights", "--time-betas",
                                       "--depth-groups", "--depth-weights", "--adaptive", "--grokfast", "--time-lambda", "--policy-warmup"])
        #expect(table.allSatisfy { !$0.help.isEmpty })
        // Setting each flag through the table fills exactly one field, a different one each time,
        // and together they fill every stored field of RefinementFlags.
        var all = RefinementFlags()
        for (i, f) in table.enumerated() {
            var one = RefinementFlags()
            one[keyPath: f.value] = "v\(i)"
            #expect(one.given.map(\.name) == [f.name])
            all[keyPath: f.value] = "v\(i)"
        }
        let stored = Mirror(reflecting: all).children.compactMap { $0.value as? String }
        #expect(stored.count == table.count)
        #expect(Mirror(reflecting: all).children.count == table.count)
        // Help ranges come from the bounds table.
        #expect(RefinementFlags.help(for: "--depth-weights").contains(AxisBounds.manual(.depth).dashText))
        #expect(RefinementFlags.help(for: "--time-weights").contains(AxisBounds.manual(.time).dashText))
    }
}
