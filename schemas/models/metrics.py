"""Evaluation metrics: exact AUC on one site's rows, and pooled metrics from site sums.

A site's own AUC is the Mann–Whitney statistic (ties count one half; Hanley & McNeil,
*Radiology* 143, 1982). The pooled AUC over all sites cannot be computed from per-site
AUCs; it is computed from the sum over sites of score histograms per class on public
bin edges. Pairs in different bins are ordered exactly; a pair in one bin may be ordered
either way, so counting every such pair against the model and then for it gives exact
lower and upper bounds of the pooled AUC (:func:`auc_interval`, Σ_b pos_b · neg_b / (P · N)
apart). :func:`binned_auc` is their midpoint (ties within a bin count one half) with half
the width, its largest possible error.

Bin edges lie on a public grid of probabilities (:func:`on_score_grid`): 0, 1, and the
numbers of :mod:`schemas.grid` (half units of the second significant digit) up to ½ and
one minus them above, so the grid is as fine in odds near 1 as near 0 and no edge is
one person's exact score. :func:`split_on_grid` gives the grid point nearest a fraction of
a bin's width on the logit scale.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from schemas.grid import nearest_on_grid, on_grid
from schemas.models.layout import Array

OPEN_END_LOGITS = 8.0
"""The width, on the logit scale, that a bin reaching 0 or 1 is split as if it had."""


def average_ranks(values: Array) -> Array:
    """1-based ranks, ties sharing their average rank (as ``scipy.stats.rankdata``)."""
    _, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
    upper = np.cumsum(counts)
    average = (upper - counts + 1 + upper) / 2.0
    ranked: Array = average[inverse].astype(np.float64)
    return ranked


def exact_auc(scores: Array, y: Array) -> float | None:
    """The AUC of ``scores`` for labels ``y`` (None when a class is absent)."""
    positives = int((y == 1).sum())
    negatives = int(y.size - positives)
    if positives == 0 or negatives == 0:
        return None
    ranks = average_ranks(scores)
    u = ranks[y == 1].sum() - positives * (positives + 1) / 2.0
    return float(u / (positives * negatives))


def on_score_grid(edge: float) -> bool:
    """Whether ``edge`` is a number of the public grid of score edges (module doc)."""
    if edge in (0.0, 1.0):
        return True
    if not 0.0 < edge < 1.0:
        return False
    if edge <= 0.5:
        return on_grid(edge)
    return edge == 1.0 - nearest_on_grid(1.0 - edge)


def snap_score(p: float) -> float:
    """The score-grid number nearest ``p`` (in ``[0, 1]``)."""
    if p <= 0.0 or p >= 1.0:
        return min(max(p, 0.0), 1.0)
    if p <= 0.5:
        return min(nearest_on_grid(p), 0.5)
    return 1.0 - min(nearest_on_grid(1.0 - p), 0.5)


def _logit(p: float) -> float:
    return math.log(p) - math.log1p(-p)


def split_on_grid(lower: float, upper: float, fraction: float) -> float | None:
    """The score-grid number nearest the point ``fraction`` of the way across the bin
    ``[lower, upper)`` on the logit scale (a bin reaching 0 or 1 counts as
    :data:`OPEN_END_LOGITS` wide); None when no grid number lies strictly inside."""
    if lower <= 0.0 and upper >= 1.0:
        z = _logit(0.5) + OPEN_END_LOGITS * (fraction - 0.5)
    elif lower <= 0.0:
        z = _logit(upper) - OPEN_END_LOGITS * (1.0 - fraction)
    elif upper >= 1.0:
        z = _logit(lower) + OPEN_END_LOGITS * fraction
    else:
        z = _logit(lower) + fraction * (_logit(upper) - _logit(lower))
    point = snap_score(1.0 / (1.0 + math.exp(-max(min(z, 700.0), -700.0))))
    return point if lower < point < upper else None


def score_histogram(scores: Array, y: Array, edges: Sequence[float]) -> tuple[list[int], list[int]]:
    """Counts of positive and negative rows per score bin (the last bin is closed)."""
    e = np.asarray(edges, dtype=np.float64)
    idx = np.clip(np.searchsorted(e, scores, side="right") - 1, 0, len(e) - 2)
    k = len(e) - 1
    pos = np.bincount(idx[y == 1], minlength=k)
    neg = np.bincount(idx[y != 1], minlength=k)
    return [int(v) for v in pos], [int(v) for v in neg]


def auc_interval(pos: Sequence[int], neg: Sequence[int]) -> tuple[float, float] | None:
    """The exact bounds of the AUC that class histograms on common bins allow: pairs in
    one bin all counted against the model, then all for it (None when a class is absent)."""
    p = np.asarray(pos, dtype=np.float64)
    n = np.asarray(neg, dtype=np.float64)
    pairs = float(p.sum() * n.sum())
    if pairs == 0:
        return None
    neg_below = np.concatenate([[0.0], np.cumsum(n)[:-1]])
    concordant = float((p * neg_below).sum())
    tied = float((p * n).sum())
    return concordant / pairs, (concordant + tied) / pairs


def binned_auc(pos: Sequence[int], neg: Sequence[int]) -> tuple[float | None, float]:
    """AUC from class histograms on common bins (the midpoint of :func:`auc_interval`),
    and its largest possible error (half the interval's width)."""
    bounds = auc_interval(pos, neg)
    if bounds is None:
        return None, 0.0
    lower, upper = bounds
    return (lower + upper) / 2.0, (upper - lower) / 2.0


__all__ = [
    "OPEN_END_LOGITS",
    "auc_interval",
    "average_ranks",
    "binned_auc",
    "exact_auc",
    "on_score_grid",
    "score_histogram",
    "snap_score",
    "split_on_grid",
]
