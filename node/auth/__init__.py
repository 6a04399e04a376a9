"""Who may ask: the node's identity, trusted coordinator keys, signatures and nonces."""
