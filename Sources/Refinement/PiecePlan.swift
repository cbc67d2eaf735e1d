import Dispatch

/// How `TimeBandFilter.refineAll` splits the tensors of an arena over workers: the elements, in
/// tensor order, are cut into `workers` spans of nearly equal size; a span boundary inside a
/// tensor falls on a multiple of `alignment` from the tensor's start, so the kernels' blocks are
/// the same as in a whole-tensor pass. Each worker runs its own contiguous pieces in order.
final class PiecePlan {
    /// A range of one tensor: `count` elements from `start` (relative to the tensor).
    struct Piece {
        var tensor: Int
        var start: Int
        var count: Int
        /// Whether the piece is its whole tensor (the tensor was not cut between workers).
        var isWholeTensor: Bool
    }

    /// The guard's decision for a tensor.
    enum Outcome {
        /// Unit weights or an empty tensor: g is left as it is.
        case keep
        /// ⟨ĝ, g⟩ ≤ 0: g is kept and counted as a fallback.
        case fallBack
        /// g is rewritten as ĝ.
        case apply
    }

    let pieces: [Piece]
    /// `pieces[firstPiece[w] ..< firstPiece[w + 1]]` belong to worker `w`.
    let firstPiece: [Int]
    /// Scratch for the pieces' sums and the tensors' guard outcomes, written by the workers.
    let sums: UnsafeMutablePointer<TimeBandKernel.Sums>
    let outcome: UnsafeMutablePointer<Outcome>
    var workers: Int { firstPiece.count - 1 }

    init(tensorCounts: [Int], workers: Int, alignment: Int) {
        let total = tensorCounts.reduce(0, +)
        let share = max(alignment, (total + workers - 1) / workers)
        var pieces: [Piece] = []
        var firstPiece = [0]
        var used = 0  // elements given to the current worker
        for (tensor, count) in tensorCounts.enumerated() {
            var start = 0
            repeat {
                var take = count - start
                if firstPiece.count < workers && used + take > share {
                    // Cut here: give the current worker what it still needs, rounded to a block.
                    let need = share - used
                    take = min(take, (need + alignment - 1) / alignment * alignment)
                }
                pieces.append(Piece(tensor: tensor, start: start, count: take, isWholeTensor: take == count))
                start += take
                used += take
                if used >= share && firstPiece.count < workers {
                    firstPiece.append(pieces.count)
                    used = 0
                }
            } while start < count
        }
        while firstPiece.count <= workers { firstPiece.append(pieces.count) }
        self.pieces = pieces
        self.firstPiece = firstPiece
        sums = .allocate(capacity: max(1, pieces.count))
        sums.initialize(repeating: TimeBandKernel.Sums(), count: max(1, pieces.count))
        outcome = .allocate(capacity: max(1, tensorCounts.count))
        outcome.initialize(repeating: .keep, count: max(1, tensorCounts.count))
    }

    deinit {
        sums.deallocate()
        outcome.deallocate()
    }

    /// Calls `body(piece)` for every piece: each worker's pieces in order, the workers concurrently.
    func run(_ body: (Int) -> Void) {
        let bounds = firstPiece
        if workers == 1 {
            for piece in pieces.indices { body(piece) }
            return
        }
        DispatchQueue.concurrentPerform(iterations: workers) { w in
            for piece in bounds[w]..<bounds[w + 1] { body(piece) }
        }
    }
}
