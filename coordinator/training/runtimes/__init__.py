"""Where a training run's rounds execute, and which runtime a run gets."""
