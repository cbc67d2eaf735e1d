// The trainer is built from a corpus (`Trainer.init(train:evalDomains:)`) and reports a synthetic
// task's scores (`BandScore`): every client of Training handles the corpus types, so Training
// re-exports the Corpus module (docs/ARCHITECTURE.md §6) and `import Training` is enough.
@_exported import Corpus
