"""The site's side of federated training: which training apps the site approved, and the
Flower ClientApp, its long-running worker and the SuperNode that carry the coordinator's
signed requests to the node."""
