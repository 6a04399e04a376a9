"""The node's rows as frames: store reads, cohorts, formulas, and values derived per run."""
