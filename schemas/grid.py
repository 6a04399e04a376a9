"""The public grid that histogram and quantile edges lie on.

An edge placed anywhere would let a researcher binary-search one person's value: an edge
just below or just above an extreme value decides whether a bin holds one person (refused,
or merged by the coordinator) or none (answered). Edges on a public grid bound what such a
search can learn to the grid's spacing. The grid is scale-free, so it needs no dictionary
and no data and the coordinator and every node agree on it: its numbers are the multiples
of half a unit in the second significant digit — ``m · 10^k`` with ``m`` one of 1.0, 1.05,
1.1, …, 9.95 — so its spacing is 0.5 to 5 % of a value's magnitude (an extreme age of 97
is located to within half a year, 987,654 to within 5,000; a glutamate concentration near
10 to 0.5 units, near 9 to 0.05).
"""

from __future__ import annotations

import math

HALF_STEPS = 2  # each unit of the second significant digit is split in two


def _spacing(value: float) -> float:
    """The grid's spacing at ``value``."""
    if value == 0.0:
        return 0.0
    return float(10.0 ** (math.floor(math.log10(abs(value))) - 1)) / HALF_STEPS


def _tidy(value: float) -> float:
    """``value`` without binary rounding noise (three significant digits suffice)."""
    return float(f"{value:.3g}") + 0.0


def nearest_on_grid(value: float) -> float:
    """The grid number nearest ``value``."""
    step = _spacing(value)
    return _tidy(round(value / step) * step) if step else 0.0


def on_grid(value: float) -> bool:
    """Whether ``value`` is a grid number."""
    return math.isfinite(value) and nearest_on_grid(value) == value


def grid_floor(value: float) -> float:
    """The largest grid number ``≤ value``."""
    snapped = nearest_on_grid(value)
    if snapped > value:
        snapped = nearest_on_grid(snapped - _spacing(value))
    return snapped


def grid_ceil(value: float) -> float:
    """The smallest grid number ``≥ value``."""
    return -grid_floor(-value) + 0.0


def grid_edges(lower: float, upper: float, bins: int) -> list[float]:
    """About ``bins`` equal bins over ``[lower, upper]``, their edges moved onto the grid
    (the range outwards, inner edges to the nearest grid number; edges that coincide
    merge, so a range the grid resolves coarsely has fewer, wider bins)."""
    low, high = grid_floor(lower), grid_ceil(upper)
    if high <= low:
        high = grid_ceil(nearest_on_grid(low) + max(_spacing(low), 1e-300))
    inner = (nearest_on_grid(low + (high - low) * i / bins) for i in range(1, bins))
    return sorted({low, high, *(e for e in inner if low < e < high)})


def check_edges(edges: list[float]) -> list[float]:
    """``edges`` unchanged when all lie on the grid; else a ``ValueError`` naming them."""
    off = [e for e in edges if not on_grid(e)]
    if off:
        shown = ", ".join(f"{e:g} (try {nearest_on_grid(e):g})" for e in off[:3])
        raise ValueError(
            "edges must lie on the public grid (multiples of half a unit in the second "
            f"significant digit, e.g. 40, 40.5, 0.25, 985000), so that no edge can be aimed "
            f"at one person's value: {shown}"
        )
    return edges


__all__ = ["check_edges", "grid_ceil", "grid_edges", "grid_floor", "nearest_on_grid", "on_grid"]
