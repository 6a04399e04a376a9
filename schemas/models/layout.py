"""Parameter layout of the trainable models, shared by both sides.

A model is described by :class:`ModelSpec` (``kind`` and, for the MLP, ``hidden``) and
the number of design columns ``p`` (the standardized design, its ``Intercept`` column
included when the formula has one). Parameters travel as a list of numpy arrays in a
fixed order:

- ``logistic``: ``[w]`` with ``w`` of shape ``(p,)``; ``P(y=1 | x) = σ(x·w)``.
- ``mlp``: ``[W1, w2, b2]`` with shapes ``(p, h)``, ``(h,)``, ``(1,)``;
  ``P(y=1 | x) = σ(tanh(x W1)·w2 + b2)``. The design's intercept column plays the role of
  the hidden layer's bias, so there is no separate ``b1``.

Initial weights are drawn from the request's seed (Glorot uniform for ``W1``, Glorot &
Bengio 2010), so every run with the same request starts from the same point.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field

Array = npt.NDArray[np.float64]
Weights = list[Array]


class ModelSpec(BaseModel):
    """Which model: ``logistic`` regression or a one-hidden-layer ``mlp`` (tanh units)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["logistic", "mlp"] = "logistic"
    hidden: int = Field(8, ge=1, le=256)


def shapes(spec: ModelSpec, p: int) -> list[tuple[int, ...]]:
    """The shape of every parameter array, in wire order."""
    if spec.kind == "logistic":
        return [(p,)]
    return [(p, spec.hidden), (spec.hidden,), (1,)]


def parameter_count(spec: ModelSpec, p: int) -> int:
    """How many numbers the model has (what the privacy gate weighs against the rows)."""
    return sum(int(np.prod(s)) for s in shapes(spec, p))


def initial_weights(spec: ModelSpec, p: int, seed: int) -> Weights:
    """Deterministic starting weights: zeros for logistic, Glorot uniform for the MLP."""
    if spec.kind == "logistic":
        return [np.zeros(p)]
    rng = np.random.default_rng(seed)
    h = spec.hidden
    limit1 = np.sqrt(6.0 / (p + h))
    limit2 = np.sqrt(6.0 / (h + 1))
    return [rng.uniform(-limit1, limit1, (p, h)), rng.uniform(-limit2, limit2, h), np.zeros(1)]


def check_weights(spec: ModelSpec, p: int, weights: Weights) -> Weights:
    """``weights`` as float64 arrays of the layout's shapes (``ValueError`` otherwise)."""
    expected = shapes(spec, p)
    if len(weights) != len(expected):
        raise ValueError(f"{spec.kind} needs {len(expected)} arrays, got {len(weights)}")
    out = []
    for i, (w, shape) in enumerate(zip(weights, expected, strict=True)):
        a = np.asarray(w, dtype=np.float64)
        if a.shape != shape:
            raise ValueError(f"array {i} has shape {a.shape}, the layout needs {shape}")
        if not np.isfinite(a).all():
            raise ValueError(f"array {i} has values that are not finite")
        out.append(a)
    return out


def flatten(weights: Weights) -> list[float]:
    """All parameters as one flat list (for JSON)."""
    return [float(v) for w in weights for v in np.ravel(w)]


def unflatten(spec: ModelSpec, p: int, flat: list[float]) -> Weights:
    """The inverse of :func:`flatten` for this layout."""
    values = np.asarray(flat, dtype=np.float64)
    expected = shapes(spec, p)
    total = sum(int(np.prod(s)) for s in expected)
    if values.shape != (total,):
        raise ValueError(f"{spec.kind} with {p} inputs has {total} parameters, got {values.size}")
    out, start = [], 0
    for shape in expected:
        size = int(np.prod(shape))
        out.append(values[start : start + size].reshape(shape))
        start += size
    return check_weights(spec, p, out)


__all__ = [
    "Array",
    "ModelSpec",
    "Weights",
    "check_weights",
    "flatten",
    "initial_weights",
    "parameter_count",
    "shapes",
    "unflatten",
]
