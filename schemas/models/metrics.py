"""Evaluation metrics: exact AUC on one site's rows, and pooled metrics from site sums.

A site's own AUC is the Mann–Whitney statistic (ties count one half; Hanley & McNeil,
*Radiology* 143, 1982). The pooled AUC over all sites cannot be computed from per-site
AUCs; it is computed from the sum over sites of score histograms per class on public
bin edges: pairs in different bins are ordered exactly and pairs in the same bin count
one half, so the binned AUC differs from the exact pooled AUC by at most
``½ · Σ_b pos_b · neg_b / (P · N)`` (:func:`binned_auc` returns that bound).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from schemas.models.layout import Array


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


def score_edges(bins: int) -> list[float]:
    """``bins`` equal-width bins of the predicted probability on [0, 1]."""
    return [float(v) for v in np.linspace(0.0, 1.0, bins + 1)]


def score_histogram(scores: Array, y: Array, edges: Sequence[float]) -> tuple[list[int], list[int]]:
    """Counts of positive and negative rows per score bin (the last bin is closed)."""
    e = np.asarray(edges, dtype=np.float64)
    idx = np.clip(np.searchsorted(e, scores, side="right") - 1, 0, len(e) - 2)
    k = len(e) - 1
    pos = np.bincount(idx[y == 1], minlength=k)
    neg = np.bincount(idx[y != 1], minlength=k)
    return [int(v) for v in pos], [int(v) for v in neg]


def binned_auc(pos: Sequence[int], neg: Sequence[int]) -> tuple[float | None, float]:
    """AUC from class histograms on common bins, and its largest possible error."""
    p = np.asarray(pos, dtype=np.float64)
    n = np.asarray(neg, dtype=np.float64)
    total_p, total_n = p.sum(), n.sum()
    if total_p == 0 or total_n == 0:
        return None, 0.0
    neg_below = np.concatenate([[0.0], np.cumsum(n)[:-1]])
    concordant = float((p * neg_below).sum())
    tied = float((p * n).sum())
    auc = (concordant + 0.5 * tied) / (total_p * total_n)
    return float(auc), float(0.5 * tied / (total_p * total_n))


__all__ = ["average_ranks", "binned_auc", "exact_auc", "score_edges", "score_histogram"]
