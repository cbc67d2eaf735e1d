// Groups of layers for the depth axis (docs/ARCHITECTURE.md §7.3).

/// Assigns tensors to depth groups by the layer they belong to.
///
/// A tensor's layer is −1 for the embeddings (token and position), 0..<layers for the transformer
/// blocks and `layers` for the final norm. Blocks are split into `groups` consecutive groups of
/// near-equal size, the first groups taking one extra block when the split is uneven (4 blocks in
/// 3 groups: L0–1 / L2 / L3). The embeddings join the first group and the final norm the last, so
/// the default is "embeddings + lower third / middle third / upper third + final norm". The tied
/// output head is the token embedding, so it counts with the first group.
///
///     let group = try DepthGroups.assign(tensorLayers: [-1, -1, 0, 0, 1, 2, 3, 4], layers: 4)
///     // [0, 0, 0, 0, 0, 1, 2, 2]
public enum DepthGroups {
    /// The default number of groups.
    public static let defaultCount = 3

    /// The default number of groups for a model of `layers` layers: `defaultCount`, or one per
    /// layer when there are fewer.
    public static func defaultGroups(layers: Int) -> Int { min(defaultCount, max(layers, 1)) }

    /// Checks that `groups` groups can be made from `layers` blocks.
    public static func validate(layers: Int, groups: Int) throws {
        guard layers >= 1 else {
            throw RefinementError("depth groups: the model needs at least one layer, got \(layers)")
        }
        guard groups >= 1 && groups <= layers else {
            throw RefinementError("depth groups: expected between 1 and \(layers) groups (one per layer at most), got \(groups)")
        }
    }

    /// The first block of every group, in order (the first is always 0).
    public static func firstLayers(layers: Int, groups: Int) throws -> [Int] {
        try validate(layers: layers, groups: groups)
        let base = layers / groups, extra = layers % groups
        var first: [Int] = []
        var next = 0
        for group in 0..<groups {
            first.append(next)
            next += base + (group < extra ? 1 : 0)
        }
        return first
    }

    /// The group of one layer (−1 embeddings, 0..<layers blocks, `layers` final norm).
    public static func group(ofLayer layer: Int, layers: Int, groups: Int) throws -> Int {
        let first = try firstLayers(layers: layers, groups: groups)
        guard layer >= -1 && layer <= layers else {
            throw RefinementError("depth groups: layer \(layer) is outside −1 (embeddings) … \(layers) (final norm)")
        }
        if layer < 0 { return 0 }
        if layer >= layers { return groups - 1 }
        return first.lastIndex { $0 <= layer }!
    }

    /// The group of every tensor, given each tensor's layer.
    public static func assign(tensorLayers: [Int], layers: Int, groups: Int = defaultCount) throws -> [Int] {
        let first = try firstLayers(layers: layers, groups: groups)
        return try tensorLayers.enumerated().map { index, layer in
            guard layer >= -1 && layer <= layers else {
                throw RefinementError(
                    "depth groups: tensor \(index) has layer \(layer), outside −1 (embeddings) … \(layers) (final norm)")
            }
            if layer < 0 { return 0 }
            if layer >= layers { return groups - 1 }
            return first.lastIndex { $0 <= layer }!
        }
    }

    /// Group names: lower/middle/upper for three, lower/upper for two, "all" for one, g0, g1, … else.
    public static func names(groups: Int) -> [String] {
        switch groups {
        case 1: return ["all"]
        case 2: return ["lower", "upper"]
        case 3: return ["lower", "middle", "upper"]
        default: return (0..<max(groups, 0)).map { "g\($0)" }
        }
    }

    /// Extents as the dashboard shows them: "L0–1", "L2", "L3+hd" (the last group also holds the
    /// final norm before the head; the first also holds the embeddings).
    public static func extents(layers: Int, groups: Int) throws -> [String] {
        let first = try firstLayers(layers: layers, groups: groups)
        return (0..<groups).map { group in
            let low = first[group]
            let high = group + 1 < groups ? first[group + 1] - 1 : layers - 1
            let blocks = low == high ? "L\(low)" : "L\(low)–\(high)"
            return group == groups - 1 ? blocks + "+hd" : blocks
        }
    }
}
