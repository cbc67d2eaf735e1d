// The run format's API speaks JSONCore's types: a header's `config` is a `JSONValue`, decoding
// errors are `JSONSyntaxError`s, and writers of records outside this module (`gradflow runs
// --json`) use `JSONWriter`. Re-exported, so a module that imports RunFormat (or Telemetry, which
// re-exports RunFormat) sees them without a second import.
@_exported import JSONCore
