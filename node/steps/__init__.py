"""Computation steps the node runs on its own rows (the wire protocol's node side)."""
