"""Models trained by the ``train`` analysis: parameter layout, numpy forward/backward,
local optimisation and evaluation metrics. Both the node (local training) and the
coordinator (initial weights, coefficients, scoring) use the same layout."""
