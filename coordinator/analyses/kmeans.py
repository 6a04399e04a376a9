"""Federated k-means: Lloyd iterations over summed per-cluster counts and sums.

Lloyd (IEEE Trans. Inf. Theory 28(2), 1982), iterated as scikit-learn's ``lloyd``
algorithm does with ``tol=0``: at iteration ``i`` rows are assigned to the current centers
and the centers move to their clusters' means; the run stops when no assignment changed
since the previous iteration (strict convergence) or the centers did not move, else after
``max_iter`` iterations and one more assignment to the final centers. Each iteration is one
secure-summable step: per-cluster counts and sums, the inertia and a changed flag per site.

Seeding without rows: the sites' candidate centroids (each of a local cluster with at least
``min_size`` persons) weighted by their sizes are seeded with k-means++ (Arthur &
Vassilvitskii, SODA 2007) and refined by weighted Lloyd on the candidates — the reclustering
step of k-means|| (Bahmani et al., PVLDB 5(7), 2012) — at the coordinator.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from coordinator.analyses.derived import cluster_labels, commit
from coordinator.federation.base import Federation
from schemas.analyses.kmeans import ClusterRequest, KmeansRequest, KmeansResult
from schemas.clustering import kmeans_plus_plus, lloyd
from schemas.errors import ErrorCode, FedpsyError
from schemas.steps.clusters import (
    KmeansCandidatesResult,
    KmeansCandidatesStep,
    KmeansSumsResult,
    KmeansSumsStep,
)

logger = logging.getLogger(__name__)

Array = npt.NDArray[np.float64]


@dataclass(frozen=True)
class LloydRun:
    centers: Array
    sizes: npt.NDArray[np.int64]
    inertia: float
    iterations: int
    converged: bool
    n: int
    missing: int


def _plain(centers: Array) -> list[list[float]]:
    return [[float(v) for v in row] for row in centers]


async def federated_lloyd(
    federation: Federation, request: ClusterRequest, init: Array, max_iter: int
) -> LloydRun:
    """Lloyd iterations from ``init`` over the federation's complete-case rows."""
    centers = np.asarray(init, dtype=np.float64)
    previous: Array | None = None
    converged = False
    base = KmeansSumsStep(
        variables=list(request.variables),
        centers=_plain(centers),
        cohort=request.cohort,
        visit=request.visit,
    )
    last: KmeansSumsResult | None = None
    iterations = 0
    for i in range(max_iter):
        iterations = i + 1
        step = base.model_copy(
            update={
                "centers": _plain(centers),
                "previous": None if previous is None else _plain(previous),
            }
        )
        last = await federation.sum(step, KmeansSumsResult)
        counts = np.asarray(last.counts, dtype=np.float64)
        sums = np.asarray(last.sums, dtype=np.float64)
        moved = np.where(counts[:, None] > 0, sums / np.maximum(counts, 1.0)[:, None], centers)
        if previous is not None and last.changed == 0:
            converged = True
            centers = moved
            break
        shift = float(((moved - centers) ** 2).sum())
        previous, centers = centers, moved
        if shift <= 0.0:
            last = None
            break
    else:
        last = None
    if last is None:  # assignments to the final centers
        last = await federation.sum(
            base.model_copy(update={"centers": _plain(centers)}), KmeansSumsResult
        )
    return LloydRun(
        centers=centers,
        sizes=np.asarray(last.counts, dtype=np.int64),
        inertia=last.inertia,
        iterations=iterations,
        converged=converged,
        n=last.n,
        missing=last.missing,
    )


async def candidates(
    federation: Federation, request: ClusterRequest, k: int
) -> tuple[Array, Array]:
    """The sites' candidate centroids and their sizes (weights)."""
    step = KmeansCandidatesStep(
        variables=list(request.variables),
        clusters=request.candidates or 2 * k,
        min_size=request.min_size,
        seed=request.seed,
        cohort=request.cohort,
        visit=request.visit,
    )
    found = await federation.gather(step, KmeansCandidatesResult)
    points = [c for r in found.values() for c in r.centers]
    weights = [float(s) for r in found.values() for s in r.sizes]
    if len({tuple(p) for p in points}) < k:
        raise FedpsyError(
            f"the sites proposed {len(points)} candidate centers (local clusters of at least "
            f"{request.min_size} persons), fewer than k = {k}; lower k or min_size, raise "
            "candidates, or give init",
            code=ErrorCode.NOT_ESTIMABLE,
        )
    return np.asarray(points, dtype=np.float64), np.asarray(weights, dtype=np.float64)


def seed_centers(points: Array, weights: Array, k: int, rng: np.random.Generator) -> Array:
    """k centers from weighted candidates: k-means++ seeding, then weighted Lloyd."""
    centers, _ = lloyd(points, kmeans_plus_plus(points, k, rng, weights), weights)
    return centers


async def best_lloyd(
    federation: Federation, request: ClusterRequest, k: int, init: Array | None, max_iter: int
) -> tuple[LloydRun, int]:
    """The run of lowest inertia over the restarts (one run from ``init`` when given)."""
    if init is not None:
        return await federated_lloyd(federation, request, init, max_iter), 1
    points, weights = await candidates(federation, request, k)
    best: LloydRun | None = None
    for restart in range(request.n_init):
        rng = np.random.default_rng([request.seed, restart])
        run = await federated_lloyd(
            federation, request, seed_centers(points, weights, k, rng), max_iter
        )
        if best is None or run.inertia < best.inertia:
            best = run
    assert best is not None
    return best, request.n_init


async def keep_labels(
    federation: Federation, request: ClusterRequest, centers: Array, what: str
) -> str:
    """Stage each row's nearest center as ``<prefix>_cluster`` at the nodes and commit."""
    k = len(centers)
    spec = cluster_labels(
        request.new_codes()[0],
        k,
        f"Cluster ({what}, k = {k})",
        what,
        "cluster of",
        request.variables,
        request.visit,
    )
    run_id = spec.run_id
    step = KmeansSumsStep(
        variables=list(request.variables),
        centers=_plain(centers),
        derive=spec,
        cohort=request.cohort,
        visit=request.visit,
    )
    staged = await federation.sum(step, KmeansSumsResult)
    await commit(federation, run_id, request.cohort, request.visit, staged.n)
    return run_id


async def kmeans(request: KmeansRequest, federation: Federation) -> KmeansResult:
    """Centers, sizes, inertia and iterations of the best run; labels kept at the nodes."""
    init = None if request.init is None else np.asarray(request.init, dtype=np.float64)
    run, restarts = await best_lloyd(federation, request, request.k, init, request.max_iter)
    run_id = None
    if request.labels_prefix is not None:
        run_id = await keep_labels(federation, request, run.centers, "k-means")
    small = [0 < s < request.min_size for s in run.sizes]
    return KmeansResult(
        variables=list(request.variables),
        k=request.k,
        centers=[
            None if hide else [float(v) for v in c]
            for c, hide in zip(run.centers, small, strict=True)
        ],
        sizes=[None if hide else int(s) for s, hide in zip(run.sizes, small, strict=True)],
        inertia=run.inertia,
        iterations=run.iterations,
        converged=run.converged,
        restarts=restarts,
        n=run.n,
        missing=run.missing,
        new_variables=request.new_codes(),
        run_id=run_id,
    )


__all__ = ["best_lloyd", "federated_lloyd", "keep_labels", "kmeans", "seed_centers"]
