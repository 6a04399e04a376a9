"""Handlers of the k-means and Gaussian-mixture steps (see :mod:`schemas.steps.clusters`).

Rows are the complete cases of the step's variables. Every per-cluster count that leaves is
declared as a cell, so the privacy gate refuses a step in which some cluster holds fewer
persons than the site's minimum cell size. For the mixture, a component's cells are the
rows it is most likely for and its rounded total responsibility. Cluster labels, when a
step stages them, are the categories ``"1"`` … ``"k"``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy.special import logsumexp

from node.data.source import FrameSource
from node.data.staging import derived_values, stage
from node.data.watch import note_rows
from node.steps.base import READ, USED, Computed, Query
from node.steps.disclosure import Rows, dominance_ratios, row_ids, uses
from node.steps.levels import numeric_values
from node.steps.math.mixture import weighted_log_density
from schemas.clustering import cluster_sums, kmeans_plus_plus, lloyd, nearest
from schemas.errors import ErrorCode, FedpsyError
from schemas.steps.base import Disclosure, StepResult
from schemas.steps.clusters import (
    GmmStatsResult,
    GmmStatsStep,
    KmeansCandidatesResult,
    KmeansCandidatesStep,
    KmeansSumsResult,
    KmeansSumsStep,
)
from schemas.steps.derived import DeriveSpec

logger = logging.getLogger(__name__)

Array = npt.NDArray[np.float64]


@dataclass(frozen=True)
class ClusterRows:
    """The complete cases of a clustering step: values, their row ids, and every row id
    read (their count leaves as ``n + missing``)."""

    x: Array
    index: pd.Index
    read: Rows

    @property
    def missing(self) -> int:
        return len(self.read) - len(self.x)

    def computed(
        self,
        result: StepResult,
        variables: list[str],
        labels: npt.NDArray[np.int64],
        k: int,
        cells: tuple[int, ...],
    ) -> Computed:
        """``result`` with its disclosure (rows, ``cells``, each variable's dominance within
        each cluster), usage (the rows read and used, each variable's rows) and queries
        (each variable summed over the rows)."""
        rows = row_ids(self.index)
        clusters = [labels == j for j in range(k)]
        # not per cluster: Lloyd's iterations move a few rows between clusters every round,
        # which the memories would refuse (the threat model names this residual)
        used = ((READ, self.read), (USED, rows), *uses(variables, rows))
        queries = tuple(Query(v, rows, np.ones((len(rows), 1))) for v in variables)
        ratios = tuple(r for mine in clusters for r in dominance_ratios(self.x[mine]))
        revealed = Disclosure(rows=len(self.x), cells=cells, dominance=ratios)
        return Computed(result, revealed, used, queries=queries)


def _rows(
    step: KmeansSumsStep | KmeansCandidatesStep | GmmStatsStep, source: FrameSource
) -> ClusterRows:
    frame = source.frame(list(step.variables), step.visit, step.cohort)
    x = numeric_values(frame, list(step.variables))
    complete: npt.NDArray[np.bool_] = np.asarray(~np.isnan(x).any(axis=1), dtype=bool)
    note_rows(int(complete.sum()))
    return ClusterRows(x[complete], frame.index[complete], row_ids(frame.index))


def _matrix(values: list[list[float]], width: int, what: str) -> Array:
    out = np.asarray(values, dtype=np.float64)
    if out.ndim != 2 or out.shape[1] != width:
        raise FedpsyError(f"{what} need one value per variable", code=ErrorCode.REQUEST_INVALID)
    return out


def _stage_labels(
    source: FrameSource, spec: DeriveSpec | None, visit: str, index: pd.Index, labels: object
) -> None:
    if spec is None:
        return
    if len(spec.codes) != 1:
        raise FedpsyError(
            "cluster labels need exactly one new variable", code=ErrorCode.REQUEST_INVALID
        )
    text = [str(int(v) + 1) for v in np.asarray(labels)]
    values = pd.DataFrame({spec.codes[0]: text}, index=index)
    stage(source, derived_values(spec, visit, values))


def kmeans_sums(step: KmeansSumsStep, source: FrameSource) -> Computed:
    """Per-cluster counts and sums, inertia, and whether assignments changed."""
    rows = _rows(step, source)
    x, index, missing = rows.x, rows.index, rows.missing
    centers = _matrix(step.centers, len(step.variables), "centers")
    labels = nearest(x, centers)
    k = len(centers)
    counts = np.bincount(labels, minlength=k)
    sums = cluster_sums(x, labels, k)
    inertia = float(((x - centers[labels]) ** 2).sum())
    changed = 1
    if step.previous is not None:
        before = nearest(x, _matrix(step.previous, len(step.variables), "previous centers"))
        changed = int(not np.array_equal(before, labels))
    _stage_labels(source, step.derive, step.visit, index, labels)
    result = KmeansSumsResult(
        n=len(x),
        missing=missing,
        counts=[int(c) for c in counts],
        sums=[[float(v) for v in row] for row in sums],
        inertia=inertia,
        changed=changed,
    )
    return rows.computed(result, list(step.variables), labels, k, tuple(int(c) for c in counts))


def kmeans_candidates(step: KmeansCandidatesStep, source: FrameSource) -> Computed:
    """Centroids of local clusters with at least ``min_size`` rows, and their sizes."""
    rows = _rows(step, source)
    x, missing = rows.x, rows.missing
    m = min(step.clusters, len(x) // step.min_size)
    centers: Array = np.zeros((0, len(step.variables)))
    sizes: list[int] = []
    kept = np.full(len(x), -1, dtype=np.int64)
    if m > 0:
        rng = np.random.default_rng(step.seed)
        centers, labels = lloyd(x, kmeans_plus_plus(x, m, rng))
        counts = np.bincount(labels, minlength=m)
        big = counts >= step.min_size
        kept = np.where(big[labels], labels, -1)
        centers, sizes = centers[big], [int(c) for c in counts[big]]
    result = KmeansCandidatesResult(
        n=len(x),
        missing=missing,
        centers=[[float(v) for v in row] for row in centers],
        sizes=sizes,
    )
    return rows.computed(result, list(step.variables), kept, m, tuple(sizes))


def gmm_stats(step: GmmStatsStep, source: FrameSource) -> Computed:
    """Responsibility-weighted sums about the current means, and the log-likelihood."""
    rows = _rows(step, source)
    x, index, missing = rows.x, rows.index, rows.missing
    p = len(step.variables)
    means = _matrix(step.means, p, "means")
    k = len(means)
    weights = np.asarray(step.weights, dtype=np.float64)
    covariances = np.asarray(step.covariances, dtype=np.float64)
    if weights.shape != (k,) or covariances.shape != (k, p, p):
        raise FedpsyError(
            "gmm_stats: weights, means and covariances disagree in shape",
            code=ErrorCode.REQUEST_INVALID,
        )
    if step.hard:
        labels = nearest(x, means)
        resp = np.zeros((len(x), k))
        resp[np.arange(len(x)), labels] = 1.0
        log_likelihood = 0.0
    else:
        dens = weighted_log_density(x, weights, means, covariances)
        norm = logsumexp(dens, axis=1)
        resp = np.exp(dens - norm[:, None])
        labels = np.argmax(dens, axis=1)
        log_likelihood = float(norm.sum())
    first, second = [], []
    for j in range(k):
        d = x - means[j]
        first.append([float(v) for v in resp[:, j] @ d])
        second.append([[float(v) for v in row] for row in (resp[:, j] * d.T) @ d])
    _stage_labels(source, step.derive, step.visit, index, labels)
    mass = resp.sum(axis=0)
    result = GmmStatsResult(
        n=len(x),
        missing=missing,
        resp=[float(v) for v in mass],
        first=first,
        second=second,
        log_likelihood=log_likelihood,
    )
    hard_counts = np.bincount(labels, minlength=k)
    cells = tuple(int(c) for c in hard_counts) + tuple(round(float(v)) for v in mass)
    return rows.computed(result, list(step.variables), labels, k, cells)


__all__ = ["gmm_stats", "kmeans_candidates", "kmeans_sums"]
