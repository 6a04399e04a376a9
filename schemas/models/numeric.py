"""Forward pass, loss and gradients of the models in :mod:`schemas.models.layout`, and the
local optimiser each site runs.

Loss: mean binary cross-entropy plus ``l2/2·‖θ‖²``; FedProx adds ``μ/2·‖θ − θᵍ‖²`` with
``θᵍ`` the global weights the round started from (Li et al., *Federated Optimization in
Heterogeneous Networks*, MLSys 2020). Local optimisation is mini-batch SGD over shuffled
rows, ``local_epochs`` passes per round, as in FedAvg (McMahan et al., *Communication-
Efficient Learning of Deep Networks from Decentralized Data*, AISTATS 2017).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from schemas.models.layout import Array, ModelSpec, Weights

EPS = 1e-12


def sigmoid(z: Array) -> Array:
    out: Array = np.empty_like(z)
    pos = z >= 0
    out[pos] = 1.0 / (1.0 + np.exp(-z[pos]))
    ez = np.exp(z[~pos])
    out[~pos] = ez / (1.0 + ez)
    return out


def logits(spec: ModelSpec, weights: Weights, x: Array) -> Array:
    """The model's log-odds for every row of ``x``."""
    if spec.kind == "logistic":
        z: Array = x @ weights[0]
        return z
    w1, w2, b2 = weights
    out: Array = np.tanh(x @ w1) @ w2 + b2[0]
    return out


def predict(spec: ModelSpec, weights: Weights, x: Array) -> Array:
    """``P(y = 1 | x)`` for every row."""
    return sigmoid(logits(spec, weights, x))


def log_loss_sum(p: Array, y: Array) -> float:
    """Sum (not mean) of the binary cross-entropy, so sites' sums add up."""
    q = np.clip(p, EPS, 1 - EPS)
    return float(-(y * np.log(q) + (1 - y) * np.log(1 - q)).sum())


def gradients(spec: ModelSpec, weights: Weights, x: Array, y: Array) -> Weights:
    """Gradient of the mean cross-entropy over the rows of ``x``."""
    n = max(x.shape[0], 1)
    if spec.kind == "logistic":
        residual = sigmoid(x @ weights[0]) - y
        return [x.T @ residual / n]
    w1, w2, b2 = weights
    hidden = np.tanh(x @ w1)
    residual = sigmoid(hidden @ w2 + b2[0]) - y
    g_w2 = hidden.T @ residual / n
    g_b2 = np.array([residual.sum() / n])
    back = np.outer(residual, w2) * (1.0 - hidden**2)
    g_w1 = x.T @ back / n
    return [g_w1, g_w2, g_b2]


@dataclass(frozen=True)
class LocalPlan:
    """How a site optimises in one round."""

    local_epochs: int
    learning_rate: float
    batch_size: int
    l2: float = 0.0
    proximal_mu: float = 0.0


def local_train(
    spec: ModelSpec, start: Weights, x: Array, y: Array, plan: LocalPlan, seed: int
) -> Weights:
    """Mini-batch SGD from ``start`` on ``(x, y)``; the proximal term pulls to ``start``."""
    rng = np.random.default_rng(seed)
    weights = [w.copy() for w in start]
    n = x.shape[0]
    batch = max(1, min(plan.batch_size, n))
    for _ in range(plan.local_epochs):
        order = rng.permutation(n)
        for begin in range(0, n, batch):
            rows = order[begin : begin + batch]
            grads = gradients(spec, weights, x[rows], y[rows])
            for w, g, w0 in zip(weights, grads, start, strict=True):
                step = g + plan.l2 * w
                if plan.proximal_mu:
                    step = step + plan.proximal_mu * (w - w0)
                w -= plan.learning_rate * step
    if not all(np.isfinite(w).all() for w in weights):
        raise FloatingPointError("local training diverged; lower the learning rate")
    return weights


__all__ = [
    "LocalPlan",
    "gradients",
    "local_train",
    "log_loss_sum",
    "logits",
    "predict",
    "sigmoid",
]
