// Refinement module.
