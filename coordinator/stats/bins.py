"""Fixed-edge bins that sites refuse when a cell is too small: merging them.

A node refuses a result with a non-zero cell below its minimum (``cell_too_small``);
:func:`only_small_cells` tells such a refusal apart, :func:`coarsen` merges adjacent bins
pairwise for the next request, and :func:`merge_small` merges the small bins of pooled
counts. The histogram and quantiles, the survival analyses and Cox use them (training's
score bins are searched instead: :mod:`coordinator.stats.score_bins`).
"""

from __future__ import annotations

from schemas.errors import ErrorCode, FedpsyError


def coarsen(edges: list[float]) -> list[float]:
    """Merge adjacent bins pairwise (an odd last bin stays alone)."""
    kept = edges[::2]
    if kept[-1] != edges[-1]:
        kept.append(edges[-1])
    return kept


def only_small_cells(exc: FedpsyError) -> bool:
    """Whether every refusal behind ``exc`` is ``cell_too_small`` (coarser bins may pass).

    A federation reports per-site failures as ``extra["sites"]`` (site → code); a bare
    error carries the code itself.
    """
    sites = exc.extra.get("sites")
    codes = {str(c) for c in sites.values()} if isinstance(sites, dict) else {exc.code}
    return codes == {ErrorCode.CELL_TOO_SMALL}


def merge_small(
    edges: list[float], counts: list[int], minimum: int
) -> tuple[list[float], list[int]]:
    """Merge every bin holding 0 < count < ``minimum`` into its right (else left) neighbour."""
    out_edges, out_counts, acc = [edges[0]], [], 0
    for i, c in enumerate(counts):
        acc += c
        if acc == 0 or acc >= minimum:
            out_counts.append(acc)
            out_edges.append(edges[i + 1])
            acc = 0
    if acc:
        out_counts.append(acc)
        out_edges.append(edges[-1])
    while len(out_counts) > 1 and 0 < out_counts[-1] < minimum:
        last = out_counts.pop()
        out_counts[-1] += last
        del out_edges[-2]
    return out_edges, out_counts


__all__ = ["coarsen", "merge_small", "only_small_cells"]
