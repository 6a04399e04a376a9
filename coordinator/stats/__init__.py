"""Statistics that the analyses and training share."""
