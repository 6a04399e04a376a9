"""fedpsy: schemas."""
