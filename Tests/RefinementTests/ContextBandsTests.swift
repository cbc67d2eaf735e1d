import Testing
import Refinement

@Suite("Context bands")
struct ContextBandsTests {
    @Test("the distance table is right at every edge of the default bands")
    func defaultTableAtEdges() throws {
        let bands = try ContextBands(edges: [8, 64], window: 128)
        let table = bands.bandIndexByDistance()
        #expect(table.count == 128)
        #expect(table[0] == 0 && table[8] == 0)
        #expect(table[9] == 1 && table[64] == 1)
        #expect(table[65] == 2 && table[127] == 2)
        for distance in 0..<128 { #expect(Int(table[distance]) == bands.band(ofDistance: distance)) }
        #expect(bands.names == ["local", "phrase", "long"])
        #expect(bands.extents == ["0–8", "9–64", "65–127"])
        #expect(bands.count == 3)
    }

    @Test("the default fits the window: fewer bands when T is small")
    func standardForSmallWindows() {
        #expect(ContextBands.standard(window: 256).edges == [8, 64])
        #expect(ContextBands.standard(window: 256).extents.last == "65–255")
        #expect(ContextBands.standard(window: 32).names == ["local", "long"])
        #expect(ContextBands.standard(window: 32).extents == ["0–8", "9–31"])
        #expect(ContextBands.standard(window: 8).names == ["all"])
        #expect(ContextBands.standard(window: 8).bandIndexByDistance() == Array(repeating: 0, count: 8))
    }

    @Test("any number of bands, single-distance bands and their names")
    func customBands() throws {
        let bands = try ContextBands(edges: [0, 3, 15, 40], window: 64)
        #expect(bands.names == ["b0", "b1", "b2", "b3", "b4"])
        #expect(bands.extents == ["0", "1–3", "4–15", "16–40", "41–63"])
        #expect(bands.bandIndexByDistance()[0] == 0 && bands.bandIndexByDistance()[1] == 1)
        #expect(bands.bandIndexByDistance()[41] == 4)
    }

    @Test("bad edges are refused with a message that says why")
    func invalidEdges() {
        func message(_ edges: [Int], _ window: Int) -> String {
            do {
                _ = try ContextBands(edges: edges, window: window)
                return "accepted"
            } catch {
                return "\(error)"
            }
        }
        #expect(message([64, 8], 128).contains("strictly increasing"))
        #expect(message([8, 8], 128).contains("strictly increasing"))
        #expect(message([-1], 128).contains("≥ 0"))
        #expect(message([8, 127], 128).contains("< T − 1 = 127"))
        #expect(message([8, 126], 128) == "accepted")
    }
}

@Suite("Depth groups")
struct DepthGroupsTests {
    @Test("4 layers in 3 groups: L0–1 / L2 / L3+hd, embeddings first, final norm last")
    func fourLayers() throws {
        let groups = try DepthGroups.assign(tensorLayers: [-1, -1, 0, 0, 1, 2, 3, 3, 4], layers: 4)
        #expect(groups == [0, 0, 0, 0, 0, 1, 2, 2, 2])
        #expect(try DepthGroups.extents(layers: 4, groups: 3) == ["L0–1", "L2", "L3+hd"])
        #expect(DepthGroups.names(groups: 3) == ["lower", "middle", "upper"])
        #expect(try DepthGroups.firstLayers(layers: 4, groups: 3) == [0, 2, 3])
    }

    @Test("6 layers split evenly; other counts")
    func otherSplits() throws {
        #expect(try DepthGroups.assign(tensorLayers: Array(-1...6), layers: 6) == [0, 0, 0, 1, 1, 2, 2, 2])
        #expect(try DepthGroups.extents(layers: 6, groups: 3) == ["L0–1", "L2–3", "L4–5+hd"])
        #expect(try DepthGroups.extents(layers: 5, groups: 1) == ["L0–4+hd"])
        #expect(try DepthGroups.assign(tensorLayers: [-1, 0, 1, 2], layers: 2, groups: 2) == [0, 0, 1, 1])
        #expect(DepthGroups.names(groups: 4) == ["g0", "g1", "g2", "g3"])
        #expect(try DepthGroups.group(ofLayer: 3, layers: 4, groups: 3) == 2)
    }

    @Test("impossible splits and layers are refused")
    func invalid() {
        #expect(throws: RefinementError.self) { try DepthGroups.assign(tensorLayers: [0], layers: 2, groups: 3) }
        #expect(throws: RefinementError.self) { try DepthGroups.assign(tensorLayers: [0], layers: 4, groups: 0) }
        #expect(throws: RefinementError.self) { try DepthGroups.assign(tensorLayers: [5], layers: 4) }
        #expect(throws: RefinementError.self) { try DepthGroups.assign(tensorLayers: [-2], layers: 4) }
    }
}
