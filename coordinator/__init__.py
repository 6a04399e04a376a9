"""fedpsy: coordinator."""
