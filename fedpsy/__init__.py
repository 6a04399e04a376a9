"""fedpsy: fedpsy."""
