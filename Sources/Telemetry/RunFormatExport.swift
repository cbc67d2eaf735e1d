// Telemetry carries the run format's records (the bus, the recorder, replay), so a module that
// imports Telemetry sees them: RunFormat is re-exported. A module that needs only the format (its
// types, codec and JSON) imports RunFormat alone (docs/ARCHITECTURE.md §5).

@_exported import RunFormat
