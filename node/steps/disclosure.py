"""What a step's numbers reveal about the rows it used: the facts the privacy gate checks.

Step handlers call these on the exact rows and columns their result is computed from and
put the answers in their :class:`~schemas.steps.base.Disclosure`; :mod:`node.privacy.gate` holds
the thresholds. Each fact closes one way of isolating a person:

* :func:`binary_cells` — the mean of a 0/1 variable is a two-cell table (its 1s and 0s).
* :func:`support` — a design column that is non-zero (or off its usual value) for one row
  only makes a coefficient that row's outcome; the rows off each column's most common
  value are a cell.
* :func:`max_leverage` — more generally, a row whose hat value ``h_ii`` is near 1 is fitted
  by its own outcome: when ``h_ii = 1`` the unit vector of that row lies in the column
  space of the design and ``Xᵀy`` determines its outcome exactly (Belsley, Kuh and
  Welsch, *Regression Diagnostics*, 1980, ch. 2).
* :func:`outcome_cells` — a binary outcome crossed with an indicator column is a table.
* :func:`dominance_ratios` — the p%-rule of magnitude tables (Hundepool et al.,
  *Statistical Disclosure Control*, 2012, §4.2; Cox, *Linear sensitivity measures*, 1981):
  a sum whose largest contribution is known to within ``p`` % by the second-largest
  contributor reveals it. Contributions are squared deviations from the mean (their
  third and fourth powers for sums of cubes and fourth powers), so a single far-out value
  that dominates a variance (and with it the mean) or a kurtosis is caught.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import numpy.typing as npt

Matrix = npt.NDArray[np.float64]
Rows = npt.NDArray[np.int64]

LEVERAGE_RANK_TOLERANCE = 1e-10
"""Singular values below this fraction of the largest count as zero (a rank-deficient
design, e.g. a level absent at this site, has leverage from its estimable part only)."""


TWO_VALUED_TOLERANCE = 1e-3
"""A column whose every value lies within this fraction of its range from its minimum or
its maximum is two-valued: ``esketamine + 1e-6·age`` or a steep sigmoid window counts its
rows as surely as a 0/1 flag."""


def two_valued_masks(values: Matrix) -> list[npt.NDArray[np.bool_]]:
    """For every (nearly) two-valued column (a flag, ``2·flag + 1``, a steep window), the
    rows at its upper value. The mean of such a column is a two-cell table."""
    masks = []
    for column in values.T:
        if column.size == 0:
            continue
        low, high = float(column.min()), float(column.max())
        if not high > low:
            continue
        scaled = (column - low) / (high - low)
        ends = (scaled <= TWO_VALUED_TOLERANCE) | (scaled >= 1.0 - TWO_VALUED_TOLERANCE)
        if bool(ends.all()):
            masks.append(np.asarray(scaled >= 0.5, dtype=bool))
    return masks


def binary_cells(values: Matrix) -> tuple[int, ...]:
    """The counts of each value of every two-valued column of ``values``."""
    n = values.shape[0]
    return tuple(
        c for mask in two_valued_masks(values) for c in (int(mask.sum()), n - int(mask.sum()))
    )


def support(x: Matrix) -> tuple[int, ...]:
    """Per non-constant column of ``x``: the rows whose value is not the column's most
    common value (constant columns, such as the intercept, reveal nothing and are left
    out)."""
    out: list[int] = []
    for column in x.T:
        _, counts = np.unique(column, return_counts=True)
        if len(counts) > 1:
            out.append(int(len(column) - counts.max()))
    return tuple(out)


def max_leverage(x: Matrix) -> float | None:
    """The largest diagonal element of the hat matrix ``X(XᵀX)⁺Xᵀ`` (None without rows or
    columns). Computed from the thin SVD, so rank-deficient designs are handled."""
    if x.shape[0] == 0 or x.shape[1] == 0:
        return None
    u, s, _ = np.linalg.svd(x, full_matrices=False)
    if s.size == 0 or s[0] == 0.0:
        return 0.0
    rank = int(np.sum(s > s[0] * LEVERAGE_RANK_TOLERANCE))
    return float(np.max(np.einsum("ij,ij->i", u[:, :rank], u[:, :rank])))


def outcome_cells(x: Matrix, y: Matrix) -> tuple[int, ...]:
    """For a two-valued outcome: the count of each value, overall and within the rows at
    the larger value of every two-valued column."""
    found = two_valued_masks(y[:, None]) if y.size else []
    if not found:
        return ()
    high = found[0]
    cells = [int(high.sum()), int(y.size - high.sum())]
    for rows in two_valued_masks(x):
        inside = int((high & rows).sum())
        cells.extend((inside, int(rows.sum()) - inside))
    return tuple(cells)


def dominance_ratios(values: Matrix, power: int = 2) -> tuple[float, ...]:
    """Per column: ``(Σc − c₁ − c₂) / c₁`` for the contributions ``c = |x − x̄|^power``
    sorted ``c₁ ≥ c₂ ≥ …`` (``inf`` when every value is equal: nothing dominates). A sum of
    cubes or fourth powers (skewness, kurtosis) is dominated by a far-out value sooner
    than a sum of squares, so each power that leaves is checked."""
    out: list[float] = []
    for column in values.T:
        if column.size == 0:
            continue
        c = np.abs(column - column.mean()) ** power
        if c.size >= 2:
            top2 = np.partition(c, c.size - 2)[-2:]
            first, second = float(top2[1]), float(top2[0])
        else:
            first, second = float(c[0]), 0.0
        if first <= 0.0:
            out.append(float("inf"))
            continue
        rest = max(float(c.sum()) - first - second, 0.0)
        out.append(rest / first)
    return tuple(out)


def row_ids(index: object) -> Rows:
    """Row ids as an int64 array (from a pandas index or any sequence of ints)."""
    return np.asarray(index, dtype=np.int64)


def uses(
    variables: Iterable[str], rows: Rows, subsets: Iterable[npt.NDArray[np.bool_]] = ()
) -> list[tuple[str, Rows]]:
    """``(v, rows)`` for every variable, and ``(v, rows[mask])`` for every subset mask a
    result also sums over (a group level, an indicator column, a cluster, a batch)."""
    masks = list(subsets)
    out = []
    for variable in dict.fromkeys(variables):
        out.append((variable, rows))
        out.extend((variable, rows[mask]) for mask in masks)
    return out


__all__ = [
    "Matrix",
    "Rows",
    "binary_cells",
    "dominance_ratios",
    "max_leverage",
    "outcome_cells",
    "row_ids",
    "support",
    "two_valued_masks",
    "uses",
]
