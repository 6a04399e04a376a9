"""The node's side of secure aggregation: long-term keys and per-session masking."""
