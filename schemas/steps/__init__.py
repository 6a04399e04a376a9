"""Wire models of the computation steps."""
