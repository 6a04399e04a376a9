"""The site's side of federated training: which training apps the site approved, the gated
local path a ClientApp gets its work done through, and the Flower ClientApp itself."""
