import Refinement
import Telemetry
import Terminal

extension DashboardState {
    mutating func handle(key: Key) -> [DashboardEffect] {
        // A screen too small for the panels shows only what it needs and that q leaves: no other
        // key acts, since nothing on it would show what the key changed.
        guard DashboardView.fits(size) else {
            if case .character("q") = key { return requestQuit() }
            return []
        }
        if showHelp {
            // Scroll keys move a help taller than the screen; any other key closes it.
            let maxScroll = HelpOverlay.layout(self).maxScroll
            switch key {
            case .character("q"): return requestQuit()
            case .resize: helpScroll = Swift.min(helpScroll, maxScroll); return []
            case .up where maxScroll > 0, .character("k") where maxScroll > 0: helpScroll = Swift.max(0, helpScroll - 1)
            case .down where maxScroll > 0, .character("j") where maxScroll > 0: helpScroll = Swift.min(maxScroll, helpScroll + 1)
            case .pageUp where maxScroll > 0: helpScroll = Swift.max(0, helpScroll - 10)
            case .pageDown where maxScroll > 0: helpScroll = Swift.min(maxScroll, helpScroll + 10)
            case .home where maxScroll > 0: helpScroll = 0
            default: showHelp = false
            }
            return []
        }
        if editingEventFilter { return editFilter(key) }
        if confirmingStop { return confirmStop(key) }
        guard let binding = keyBinding(for: key) else { return unbound(key) }
        return perform(binding.action, key: key, label: binding.label)
    }

    /// The row of the key table a key means now (this mode, this panel focused).
    func keyBinding(for key: Key) -> KeyBinding? {
        KeyBindings.binding(for: key, mode: mode, focus: focus)
    }

    /// What an action does (`KeyBindings.table` says which key means which action). `label` names
    /// the key in status messages.
    private mutating func perform(_ action: KeyAction, key: Key, label: String) -> [DashboardEffect] {
        switch action {
        case .quit: return requestQuit()
        case .help: showHelp = true; helpScroll = 0
        case .focusNext: cycleFocus(by: 1)
        case .focusPrevious: cycleFocus(by: -1)
        case .expand: expanded = expanded == nil ? focus : nil
        case .collapse: expanded = nil
        case .togglePanel:
            if case let .character(c) = key, let panel = Panel(key: c) { togglePanel(panel) }
        case .selectUp: moveSelection(-1)
        case .selectDown: moveSelection(1)
        case .scrollUp: eventsScroll = Swift.max(0, eventsScroll - 1)
        case .scrollDown: eventsScroll = Swift.min(Swift.max(0, filteredEvents.count - 1), eventsScroll + 1)
        case .scrollPageUp: eventsScroll = Swift.max(0, eventsScroll - 10)
        case .scrollPageDown: eventsScroll = Swift.min(Swift.max(0, filteredEvents.count - 1), eventsScroll + 10)
        case .scrollTop: eventsScroll = 0
        case .editEventFilter:
            editingEventFilter = true
            setStatus("filter events: type, Enter keeps, Esc clears")
        case .clearEventFilter:
            // Esc clears the filter; with none (or a panel expanded) it returns from the expanded panel.
            guard !eventFilter.isEmpty, expanded == nil else { expanded = nil; return [] }
            eventFilter = ""
            eventsScroll = 0
            setStatus("events: filter cleared")
        case .stop:
            guard controlAllowed() else { return [] }
            if silentSeconds != nil {
                // A stop queued for a writer that died would end the run the moment it is resumed.
                setStatus("the run is silent (writer gone?): nothing to stop; a stop now would end it when it is resumed", error: true)
                return []
            }
            confirmingStop = true
            setStatus("stop the run? it writes a checkpoint and its end record. y stops it, any other key cancels", error: true)
        case .togglePause: return togglePause()
        case .weightUp: return scaleWeight(by: 1.1, keyName: label)
        case .weightDown: return scaleWeight(by: 1 / 1.1, keyName: label)
        case .weightDouble: return scaleWeight(by: 2, keyName: label)
        case .weightHalve: return scaleWeight(by: 0.5, keyName: label)
        case .weightReset: return setWeight(1, keyName: label)
        case .toggleAdaptive: return toggleAdaptive()
        case .undo: return undoLast()
        case .checkpoint:
            guard controlAllowed() else { return [] }
            setStatus("checkpoint requested")
            return [.command(.checkpointNow(source: Self.keySource))]
        case .revert:
            guard controlAllowed() else { return [] }
            setStatus("revert requested: the twin becomes the main run")
            return [.command(.revert(source: Self.keySource))]
        case .twinCheck:
            guard controlAllowed() else { return [] }
            setStatus("A/A check requested: a twin window with no change (d_t must stay 0)")
            return [.command(.openTwin(source: Self.keySource))]
        case .seekBack: return [.replay(.seek(steps: -seekStride))]
        case .seekForward: return [.replay(.seek(steps: seekStride))]
        case .seekFarBack: return [.replay(.seek(steps: -seekStride * 10))]
        case .seekFarForward: return [.replay(.seek(steps: seekStride * 10))]
        case .slower: return [.replay(.slower)]
        case .faster: return [.replay(.faster)]
        case .stepOnce: return [.replay(.stepOnce)]
        case .fork: return forkHere()
        case .logY:
            logY.toggle()
            setStatus("log-y \(logY ? "on" : "off")")
        case .smoothing:
            smoothingIndex = (smoothingIndex + 1) % Self.smoothingLevels.count
            setStatus(smoothing == 0 ? "smoothing off" : "smoothing EMA \(smoothing)")
        case .zoom:
            zoomIndex = (zoomIndex + 1) % Self.zoomLevels.count
            setStatus(zoom.map { "zoom: last \(Format.grouped($0)) steps" } ?? "zoom: all steps")
        case .graphStyle:
            let all = GraphStyle.allCases
            graphStyle = all[(all.firstIndex(of: graphStyle)! + 1) % all.count]
            setStatus("graph: \(graphStyle.rawValue)")
        case .perHead:
            perHead.toggle()
            setStatus("attention: per \(perHead ? "head" : "layer")")
        case .theme:
            themeIndex = (themeIndex + 1) % Swift.max(1, themeNames.count)
            setStatus("theme: \(themeNames.isEmpty ? "default" : themeNames[themeIndex])")
        }
        return []
    }

    /// A key with no meaning here: in a replay, one that a live run binds (the keys that steer it)
    /// says a replay is read-only; in a live run, one that only a replay binds says so.
    private mutating func unbound(_ key: Key) -> [DashboardEffect] {
        if mode == .replay {
            if KeyBindings.action(for: key, mode: .live, focus: focus) != nil {
                setStatus("replay is read-only: weights and checkpoints belong to a live run", error: true)
            }
        } else if let row = KeyBindings.binding(for: key, mode: .replay, focus: focus),
                  !KeyBindings.table.contains(where: { $0.modes.contains(mode) && $0.keys.contains(key) }),
                  let line = KeyBindings.helpLine(of: row, mode: .replay) {
            setStatus("\(line.keys) is a replay key (\(line.text)); use \(Panel.keyRange) to hide or show panels")
        }
        return []
    }

    /// How far ← → seek in a replay: 2 % of the run, at least 10 steps.
    private var seekStride: Int { Swift.max(10, (data.header?.totalSteps ?? 1000) / 50) }

    /// After x: y stops the run, any other key cancels.
    private mutating func confirmStop(_ key: Key) -> [DashboardEffect] {
        confirmingStop = false
        guard key == .character("y") || key == .character("Y") else {
            setStatus("stop cancelled: the run goes on")
            return []
        }
        setStatus("stop requested: the run writes a checkpoint and its end record")
        return [.command(.stop(source: Self.keySource))]
    }

    /// Typing into the Events filter: characters narrow it at once (the panel shows the match
    /// count), Backspace deletes, Enter keeps the filter, Esc clears it.
    private mutating func editFilter(_ key: Key) -> [DashboardEffect] {
        switch key {
        case .enter:
            editingEventFilter = false
            setStatus(eventFilter.isEmpty ? "events: no filter" : "events: filter \"\(eventFilter)\" (/ to edit, Esc clears)")
        case .escape:
            editingEventFilter = false
            eventFilter = ""
            setStatus("events: filter cleared")
        case .backspace:
            if !eventFilter.isEmpty { eventFilter.removeLast() }
        case let .character(c) where eventFilter.count < 40:
            eventFilter.append(c)
        case .control("c"):
            editingEventFilter = false
            return requestQuit()
        default:
            break
        }
        eventsScroll = 0
        return []
    }

    /// f in a replay: fork from the latest checkpoint at or before the replay position.
    private mutating func forkHere() -> [DashboardEffect] {
        let position = data.stepsDone
        guard !forkSteps.isEmpty else {
            setStatus("fork: this recording has no checkpoints (forking needs its run folder's ckpt-NNNNNN.gfck)", error: true)
            return []
        }
        guard let step = forkSteps.last(where: { $0 <= position }) else {
            setStatus("fork: no checkpoint at or before step \(Format.grouped(position)) (the first is at \(Format.grouped(forkSteps[0])))", error: true)
            return []
        }
        return [.fork(step: step)]
    }

    private mutating func togglePause() -> [DashboardEffect] {
        if mode == .replay { return [.replay(.togglePause)] }
        guard controlAllowed() else { return [] }
        let wasPaused = data.paused
        data.paused.toggle()
        setStatus(wasPaused ? "resume requested" : "pause requested (the trainer stops at the next step boundary)")
        return [.command(wasPaused ? .resume(source: Self.keySource) : .pause(source: Self.keySource))]
    }

    private mutating func controlAllowed() -> Bool {
        if !canControl { setStatus("read-only view: no trainer to send commands to", error: true); return false }
        if data.end != nil { setStatus("the run has ended", error: true); return false }
        if quitting { setStatus("stopping: commands are no longer sent", error: true); return false }
        return true
    }

    // MARK: - Weights

    private mutating func scaleWeight(by factor: Double, keyName: String) -> [DashboardEffect] {
        setWeight(currentWeight(row: selectedRow) * factor, keyName: keyName)
    }

    /// Sends a new weight for the selected band, clamped to the manual bounds (a key press makes
    /// the axis manual, and the trainer checks the same table); refuses when the band already sits
    /// at the bound it would cross.
    private mutating func setWeight(_ requested: Double, keyName: String) -> [DashboardEffect] {
        guard controlAllowed(), let row = selectedBand else { return [] }
        let old = currentWeight(row: selectedRow)
        let range = AxisBounds.bounds(row.axis, band: row.band, mode: .manual)
        let lo = range.floor, hi = range.ceiling
        let eps = 1e-9
        var value = requested
        var note = ""
        if value > hi + eps {
            if old >= hi - eps {
                setStatus("\(row.label) is at its ceiling \(Format.fixed(hi, 2)): not changed", error: true)
                return []
            }
            value = hi
            note = " (clamped to ceiling)"
        } else if value < lo - eps {
            if old <= lo + eps {
                setStatus("\(row.label) is at its floor \(Format.fixed(lo, 2)): not changed", error: true)
                return []
            }
            value = lo
            note = " (clamped to floor)"
        }
        if Swift.abs(value - old) < eps {
            setStatus("\(row.label) is already \(Format.fixed(value, 2))")
            return []
        }
        markPending(row.target, value)
        undo.append(.weight(row.target, old: old, new: value))
        if undo.count > 100 { undo.removeFirst() }
        setStatus("\(row.label) \(Format.fixed(old, 2)) → \(Format.fixed(value, 2))\(note) · key \(keyName) · applies at the next step")
        return [.command(.setWeight(row.target, value, source: Self.keySource))]
    }

    private mutating func toggleAdaptive() -> [DashboardEffect] {
        guard controlAllowed(), let row = selectedBand else { return [] }
        // A request of this dashboard's not yet answered counts as done: a second `a` undoes it.
        let isAdaptive = pendingModes[row.axis]?.adaptive ?? (data.mode(of: row.axis) == .adaptive)
        var weights: [WeightTarget: Double] = [:]
        if !isAdaptive {
            for (i, r) in data.rows.enumerated() where r.axis == row.axis {
                if let w = data.weight(row: i) { weights[r.target] = w }
            }
        }
        undo.append(.adaptive(row.axis, was: isAdaptive, weights: weights))
        markPendingMode(row.axis, adaptive: !isAdaptive)
        setStatus("\(row.axis.rawValue): \(isAdaptive ? "manual" : "adaptive") requested")
        return [.command(.setAdaptive(row.axis, !isAdaptive, source: Self.keySource))]
    }

    private mutating func undoLast() -> [DashboardEffect] {
        guard controlAllowed() else { return [] }
        guard let last = undo.popLast() else {
            setStatus("nothing to undo")
            return []
        }
        switch last {
        case let .weight(target, old, new):
            let label = data.rows.first { $0.target == target }?.label ?? "\(target.axis.rawValue).\(target.band)"
            if let row = data.rows.firstIndex(where: { $0.target == target }), Swift.abs(currentWeight(row: row) - old) < 1e-9 {
                // Already back (a revert or rollback undid it): a command would change nothing.
                setStatus("nothing to undo: \(label) is already \(Format.fixed(old, 2))")
                return []
            }
            markPending(target, old)
            setStatus("undo: \(label) \(Format.fixed(new, 2)) → \(Format.fixed(old, 2))")
            return [.command(.setWeight(target, old, source: Self.keySource))]
        case let .adaptive(axis, was, weights):
            guard !was, !weights.isEmpty else {
                markPendingMode(axis, adaptive: was)
                setStatus("undo: \(axis.rawValue) back to \(was ? "adaptive" : "manual")")
                return [.command(.setAdaptive(axis, was, source: Self.keySource))]
            }
            // Back to manual with the weights the axis had: each weight command makes it manual.
            let targets = weights.keys.sorted { $0.band < $1.band }
            for t in targets { markPending(t, weights[t]!) }
            setStatus("undo: \(axis.rawValue) back to manual at " + targets.map { Format.fixed(weights[$0]!, 2) }.joined(separator: ", "))
            return targets.map { .command(.setWeight($0, weights[$0]!, source: Self.keySource)) }
        }
    }

    // MARK: - Focus and panels

    private mutating func cycleFocus(by delta: Int) {
        let panels = expanded == nil ? visiblePanels : Panel.allCases.filter { !hidden.contains($0) }
        guard !panels.isEmpty else { return }
        let i = panels.firstIndex(of: focus) ?? 0
        focus = panels[(i + delta + panels.count) % panels.count]
        if expanded != nil { expanded = focus }
    }

    private mutating func togglePanel(_ p: Panel) {
        if hidden.contains(p) {
            hidden.remove(p)
            setStatus("\(p.title) shown")
        } else {
            guard hidden.count < Panel.allCases.count - 1 else {
                setStatus("at least one panel stays visible", error: true)
                return
            }
            hidden.insert(p)
            if expanded == p { expanded = nil }
            if focus == p, let next = visiblePanels.first { focus = next }
            setStatus("\(p.title) hidden (\(p.rawValue) shows it again)")
        }
    }

    private mutating func moveSelection(_ delta: Int) {
        guard !data.rows.isEmpty else { return }
        selectedRow = Swift.max(0, Swift.min(data.rows.count - 1, selectedRow + delta))
    }
}
