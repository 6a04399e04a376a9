"""Reference tables shipped with the node's derivations (see README.md in this folder)."""
