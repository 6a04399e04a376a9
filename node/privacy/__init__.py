"""The privacy gate: the site's policy, what a step's numbers reveal, and what may leave."""
