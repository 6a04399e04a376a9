"""``kmeans``: federated k-means (Lloyd) for data-driven subgroups (biotypes).

Each iteration the sites return per-cluster counts and sums for the current centers; with
the same initial centers (``init``, clusters × variables) the result equals scikit-learn's
``KMeans(init=centers, n_init=1, algorithm="lloyd", tol=0)`` on the pooled rows (an empty
cluster keeps its center instead of being moved to a far row). Without ``init``, every site
proposes the centroids of its own local clusters (``candidates`` per site, default ``2k``)
that hold at least ``min_size`` persons; the coordinator seeds with weighted k-means++ over
those proposals (Arthur & Vassilvitskii, SODA 2007) and restarts ``n_init`` times from
``seed``, keeping the lowest inertia. Complete cases only; variables are used as they are
(standardize them first — e.g. cluster PCA scores — when their units differ).

Every per-site cluster count is checked by the site's gate (minimum cell size), so a
cluster that holds a few persons at some site refuses the step there. Result: ``centers``,
``sizes`` (a cluster below ``min_size`` in total is suppressed: its size and center are
null), ``inertia`` (within-cluster sum of squares), ``iterations``, ``converged`` (the
assignments stopped changing). With ``labels_prefix`` the nodes keep each row's cluster as
the categorical variable ``<prefix>_cluster`` (``"1"`` … ``"k"``).
"""

from __future__ import annotations

from typing import Literal, Self

from pydantic import Field, model_validator

from schemas.analyses.base import AnalysisBase, AnalysisResult
from schemas.dictionary.model import CODE_MAX_LENGTH, CODE_PATTERN

LABEL_SUFFIX = "_cluster"


class ClusterRequest(AnalysisBase):
    """Fields k-means and the Gaussian mixture share."""

    variables: list[str] = Field(min_length=1)
    seed: int = 0
    n_init: int = Field(default=4, ge=1, le=100)
    min_size: int = Field(default=5, ge=1)
    candidates: int | None = Field(default=None, ge=1, le=1000)
    labels_prefix: str | None = Field(
        default=None, pattern=CODE_PATTERN, max_length=CODE_MAX_LENGTH - len(LABEL_SUFFIX)
    )

    def analysis_variables(self) -> set[str]:
        return set(self.variables)

    def new_codes(self) -> list[str]:
        return [] if self.labels_prefix is None else [f"{self.labels_prefix}{LABEL_SUFFIX}"]


class KmeansRequest(ClusterRequest):
    analysis: Literal["kmeans"] = "kmeans"
    k: int = Field(ge=2, le=100)
    init: list[list[float]] | None = None
    max_iter: int = Field(default=300, ge=1, le=10_000)

    @model_validator(mode="after")
    def _shapes(self) -> Self:
        if len(set(self.variables)) != len(self.variables):
            raise ValueError("variables: a variable is named twice")
        if self.init is not None and (
            len(self.init) != self.k or any(len(c) != len(self.variables) for c in self.init)
        ):
            raise ValueError("init: give k centers with one value per variable")
        return self


class KmeansResult(AnalysisResult):
    variables: list[str]
    k: int
    centers: list[list[float] | None]
    sizes: list[int | None]
    inertia: float
    iterations: int
    converged: bool
    restarts: int
    n: int
    missing: int
    new_variables: list[str]
    run_id: str | None


__all__ = ["LABEL_SUFFIX", "ClusterRequest", "KmeansRequest", "KmeansResult"]
