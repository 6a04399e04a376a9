"""``gmm``: Gaussian mixture with full covariances, fitted by federated EM.

Each EM iteration the sites return responsibility-weighted sums (Σr, Σr·x, Σr·xxᵀ, about
the current means) and their log-likelihood; the coordinator's M-step is scikit-learn's
(``GaussianMixture(covariance_type="full")``: ``10·eps`` added to each component's mass,
``reg_covar`` to each covariance's diagonal) and iteration stops when the mean
log-likelihood changes by less than ``tol`` (Dempster, Laird & Rubin, JRSS B 39(1), 1977).
Started from the same ``init`` (weights, means, covariances) the result equals
scikit-learn's on the pooled rows. Without ``init`` each restart starts from a federated
k-means (see ``kmeans``) as scikit-learn's ``init_params="kmeans"`` does.

``k`` may be a list: each is fitted and the one with the lowest BIC (Schwarz, Ann. Stat.
6(2), 1978; ``−2 log L + p ln n`` with ``p = k·d(d+1)/2 + k·d + k − 1``) is reported, with
every candidate's BIC in ``bic_by_k``. ``log_likelihood``: mean per row under the final
parameters; ``lower_bound``: the same before the last M-step (scikit-learn's
``lower_bound_``). With ``labels_prefix`` the nodes keep each row's most likely component as
``<prefix>_cluster``. A site refuses an E-step in which a component is the most likely one
for, or carries the responsibility of, fewer persons than its minimum cell size.
"""

from __future__ import annotations

from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from schemas.analyses.base import AnalysisResult
from schemas.analyses.kmeans import ClusterRequest


class GmmInit(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    weights: list[float] = Field(min_length=1)
    means: list[list[float]]
    covariances: list[list[list[float]]]


class GmmRequest(ClusterRequest):
    analysis: Literal["gmm"] = "gmm"
    k: int | list[int]
    init: GmmInit | None = None
    n_init: int = Field(default=1, ge=1, le=100)
    max_iter: int = Field(default=100, ge=1, le=10_000)
    tol: float = Field(default=1e-3, ge=0.0)
    reg_covar: float = Field(default=1e-6, ge=0.0)

    @model_validator(mode="after")
    def _shapes(self) -> Self:
        ks = self.candidate_ks()
        if not ks or any(k < 1 or k > 50 for k in ks) or len(set(ks)) != len(ks):
            raise ValueError("k: give a number of components (1 to 50) or a list of distinct ones")
        if self.init is not None:
            k, p = ks[0], len(self.variables)
            if len(ks) != 1:
                raise ValueError("init: only with a single k")
            if (
                len(self.init.weights) != k
                or len(self.init.means) != k
                or any(len(m) != p for m in self.init.means)
                or len(self.init.covariances) != k
                or any(len(c) != p or any(len(r) != p for r in c) for c in self.init.covariances)
            ):
                raise ValueError("init: give k weights, k means and k covariance matrices")
        return self

    def candidate_ks(self) -> list[int]:
        return [self.k] if isinstance(self.k, int) else list(self.k)


class GmmResult(AnalysisResult):
    variables: list[str]
    k: int
    weights: list[float]
    means: list[list[float]]
    covariances: list[list[list[float]]]
    log_likelihood: float
    lower_bound: float
    iterations: int
    converged: bool
    bic: float
    aic: float
    bic_by_k: dict[str, float]
    n: int
    missing: int
    new_variables: list[str]
    run_id: str | None


__all__ = ["GmmInit", "GmmRequest", "GmmResult"]
