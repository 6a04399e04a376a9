"""Coordinator-side analyses: one module per analysis family, and the registry by name."""
