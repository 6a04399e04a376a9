"""The steps of federated k-means and Gaussian-mixture EM.

k-means (Lloyd, IEEE Trans. Inf. Theory 28(2), 1982): each iteration the coordinator sends
the current centers and every node returns, for its complete-case rows assigned to their
nearest center, per-cluster counts and sums, the within-cluster sum of squares (inertia)
and whether any row's assignment changed since the ``previous`` centers — all additive.
Cluster counts are cells for the privacy gate.

Initialization without rows: each node clusters its own rows into ``clusters`` local
clusters and returns the centroids of those with at least ``min_size`` rows, with their
sizes (gathered); the coordinator runs weighted k-means++ over them.

Gaussian mixture (Dempster, Laird & Rubin, JRSS B 39(1), 1977): each E-step the nodes
return, per component ``k``, ``Σr``, ``Σr(x − μ_k)``, ``Σr(x − μ_k)(x − μ_k)ᵀ`` about the
current means, and the summed log-likelihood; the coordinator does the M-step.

Steps that finish a run can stage each row's cluster (``derive``) at the node.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from schemas.steps.base import StepBase, StepResult
from schemas.steps.derived import DeriveSpec


class KmeansSumsStep(StepBase):
    """Assign rows to the nearest of ``centers`` (clusters × variables)."""

    step: Literal["kmeans_sums"] = "kmeans_sums"
    variables: list[str] = Field(min_length=1)
    centers: list[list[float]] = Field(min_length=1)
    previous: list[list[float]] | None = None
    derive: DeriveSpec | None = None


class KmeansSumsResult(StepResult):
    """``changed``: 1 when some row's nearest center differs between ``previous`` and
    ``centers`` (1 when there are no previous centers), else 0."""

    n: int
    missing: int
    counts: list[int]
    sums: list[list[float]]
    inertia: float
    changed: int


class KmeansCandidatesStep(StepBase):
    """Local k-means++ and Lloyd into ``clusters`` clusters (random ``seed``); return the
    centroids of clusters with at least ``min_size`` rows."""

    step: Literal["kmeans_candidates"] = "kmeans_candidates"
    variables: list[str] = Field(min_length=1)
    clusters: int = Field(ge=1, le=1000)
    min_size: int = Field(ge=1)
    seed: int = 0


class KmeansCandidatesResult(StepResult):
    n: int
    missing: int
    centers: list[list[float]]
    sizes: list[int]


class GmmStatsStep(StepBase):
    """One E-step under ``weights``, ``means`` and full ``covariances``; ``hard``: use the
    nearest mean (Euclidean) as a one-hot responsibility instead (a k-means start)."""

    step: Literal["gmm_stats"] = "gmm_stats"
    variables: list[str] = Field(min_length=1)
    weights: list[float] = Field(min_length=1)
    means: list[list[float]]
    covariances: list[list[list[float]]]
    hard: bool = False
    derive: DeriveSpec | None = None


class GmmStatsResult(StepResult):
    """Per component: ``resp = Σr``, ``first = Σr(x − μ)``, ``second = Σr(x − μ)(x − μ)ᵀ``;
    ``log_likelihood``: Σ over rows of log Σ_k w_k N(x; μ_k, Σ_k)."""

    n: int
    missing: int
    resp: list[float]
    first: list[list[float]]
    second: list[list[list[float]]]
    log_likelihood: float


__all__ = [
    "GmmStatsResult",
    "GmmStatsStep",
    "KmeansCandidatesResult",
    "KmeansCandidatesStep",
    "KmeansSumsResult",
    "KmeansSumsStep",
]
