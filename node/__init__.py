"""fedpsy: node."""
