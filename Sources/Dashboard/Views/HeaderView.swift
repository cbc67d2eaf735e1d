import Foundation
import Telemetry
import Terminal
import Themes

/// The top line: run, data, model size, progress, speed, time and state.
enum HeaderView {
    static func render(_ state: DashboardState, into canvas: inout Canvas, _ rect: Rect, theme: Theme) {
        let d = state.data
        let fg = theme.style(.fg), dim = theme.style(.dim)
        var left: [Span] = [Span(" gradflow ▸ ", theme.style(.title, .bold))]
        guard let header = d.header else {
            left.append(Span("waiting for the run header…", dim))
            canvas.put(left, x: rect.x, y: rect.y, maxX: rect.maxX)
            let badge = "● \(state.runStateLabel) "
            canvas.put(badge, x: rect.maxX - Format.width(badge), y: rect.y, style: theme.style(.zone_watch, .bold))
            return
        }
        // Pieces in order of importance; the least important go first when the line is short.
        let dataText: String = {
            if let train = header.trainingData ?? header.data.first {
                // "train:shakespeare" names the data; otherwise the file's name without extension.
                var name = train.trainingName
                if name.isEmpty {
                    let base = (train.path as NSString).lastPathComponent
                    name = base.contains(".") ? String(base[..<base.lastIndex(of: ".")!]) : base
                }
                return "\(name.isEmpty ? train.name : name) \(Format.bytes(train.bytes))"
            }
            return header.runName
        }()
        let step = d.stepsDone
        let total = Swift.max(header.totalSteps, step)
        // A replay's bar is the position in the recording; a live run's, the planned steps.
        let replay = state.mode == .replay ? state.replayStatus : nil
        let recorded = replay.map { Swift.max($0.recordedSteps ?? 0, step) }
        let fraction = recorded.map { $0 > 0 ? Double(step) / Double($0) : 0 } ?? (total > 0 ? Double(step) / Double(total) : 0)
        let bar = Meter.bar(fraction, width: 20)
        let elapsed = d.lastT
        let doneSteps = Swift.max(1, step - (d.trainLoss.firstX ?? 0))
        let eta = step > 0 && total > step ? Double(total - step) * elapsed / Double(doneSteps) : 0
        let badge = state.runStateLabel
        let badgeKey: ThemeKey = {
            if d.end?.reason == .completed { return .event_eval }
            if d.end != nil || state.quitting { return .event_warn }
            if state.mode == .replay { return .series_train }
            return d.paused ? .zone_watch : .zone_calm
        }()

        struct Piece { var spans: [Span]; var priority: Int }
        var pieces: [Piece] = [
            Piece(spans: [Span(dataText, fg)], priority: 2),
            Piece(spans: [Span(" · preset \(header.preset) · \(Format.compact(Double(header.parameters))) params", dim)], priority: 1),
            // A data-parallel run says how it is spread: "· 2 ranks × 1 threads".
            Piece(spans: header.ranks > 1 ? [Span(" · \(header.processSummary)", fg)] : [], priority: 3),
            recorded.map { rec in
                let icon = replay!.finished ? "■" : (replay!.paused ? "‖" : "▶")
                return Piece(spans: [Span("   \(icon) step ", dim), Span("\(Format.grouped(step))", theme.style(.fg, .bold)),
                                     Span(" of \(Format.grouped(rec)) recorded", dim)], priority: 9)
            } ?? Piece(spans: [Span("   step ", dim), Span("\(Format.grouped(step))/\(Format.grouped(total))", theme.style(.fg, .bold))], priority: 9),
            Piece(spans: [Span(" ▕", dim), Span(bar.filled, theme.style(.series_train)), Span(bar.rest, dim), Span("▏", dim)], priority: 4),
            Piece(spans: [Span(" \(Format.percent(fraction))", fg)], priority: 6),
            // No speed while paused: the last step's would stay on screen as if the run went on.
            Piece(spans: [Span("   \(d.paused && d.end == nil ? "–" : Format.compact(d.lastStep?.tokensPerSecond ?? 0)) tok/s", fg)], priority: 5),
            Piece(spans: [Span("   \(Format.duration(elapsed))", fg)], priority: 7),
        ]
        // The writing process's figures (system records, at a low rate): CPU, memory, threads; not
        // once the run has ended or gone silent, when they describe a process that is gone.
        let writerLive = d.end == nil && state.silentSeconds == nil
        if let s = d.system, state.mode == .replay || writerLive {
            var text = " · CPU \(Format.fixed(s.cpuPercent, 0))% · \(Format.bytes(s.residentBytes)) · \(s.threads) thr"
            if let g = s.gpuMemoryBytes { text += " · GPU \(Format.bytes(g))" + (s.gpuUtilPercent.map { " \(Format.fixed($0, 0))%" } ?? "") }
            pieces.append(Piece(spans: [Span(text, dim)], priority: 3))
        }
        // After the step: "twin 120/200" while a twin window is open.
        if let t = d.twinWindow?.sample {
            pieces.insert(Piece(spans: [Span("   twin ", dim), Span("\(t.pairedSteps)/\(t.windowSteps)", theme.style(.title, .bold))],
                                priority: 8), at: 4)
        }
        // An ETA only for a run still training (not a replay, not a run that has ended, is silent
        // or is paused).
        if replay == nil && writerLive && !d.paused {
            pieces.append(Piece(spans: [Span(" · ETA \(eta > 0 ? Format.duration(eta) : "–")", dim)], priority: 3))
        }
        let badgeSpans = [Span("● \(badge) ", theme.style(badgeKey, .bold))]
        let badgeWidth = badgeSpans.reduce(0) { $0 + Format.width($1.text) }
        func width(_ ps: [Piece]) -> Int { ps.reduce(0) { $0 + $1.spans.reduce(0) { $0 + Format.width($1.text) } } }
        let room = rect.width - badgeWidth - 2 - Format.width(left[0].text)
        // Most important first, each piece kept if it still fits; then back in reading order.
        var kept = Set<Int>()
        var used = 0
        for i in pieces.indices.sorted(by: { pieces[$0].priority > pieces[$1].priority }) {
            let w = width([pieces[i]])
            if used + w <= room { kept.insert(i); used += w }
        }
        pieces = pieces.indices.filter(kept.contains).map { pieces[$0] }
        var spans = pieces.flatMap(\.spans)
        if let first = spans.first { spans[0].text = String(first.text.drop { $0 == " " }) }
        canvas.put(left + spans, x: rect.x, y: rect.y, maxX: rect.maxX - badgeWidth)
        canvas.put(badgeSpans, x: rect.maxX - badgeWidth, y: rect.y, maxX: rect.maxX)
    }
}
