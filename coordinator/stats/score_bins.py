"""Score bins for the pooled AUC, as fine as every site's cell rule allows.

The pooled AUC comes from class histograms of the test scores summed over sites
(:func:`schemas.models.metrics.auc_interval`); its interval is as wide as the pairs of a
positive and a negative that share a bin. Each site's count of each class in each bin is a
cell (0 or at least its ``min_cell``), so fixed equal-width bins, halved until no site
refuses, end with one or two bins. Instead the bins are found by a quantile search over
counts: from one bin ``[0, 1]``, each bin still holding both classes (most tied pairs
first) is split on the logit scale at a number of the public score grid
(:func:`schemas.models.metrics.split_on_grid`), and the sites answer the histogram with
the new edges only when every count at every site passes their gate. Splits are asked
together; a refused group is halved until the refused splits are found (adaptive group
testing), and a refused split is tried again at other fractions of its bin (quarters,
eighths, sixteenths), then given up. Bins are split where both classes are dense, so they
end about equally filled, within :data:`MOST_REQUESTS` requests.

Every histogram asked adds edges to the last answered one and never moves one: each
released histogram is the previous one with some bins cut, so all the counts that ever
leave are sums of the cells of the last, every one of which passed each site's gate.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from coordinator.federation.failures import SitesFailed
from schemas.errors import ErrorCode
from schemas.models.metrics import split_on_grid
from schemas.steps.train import TrainSumResult

logger = logging.getLogger(__name__)

FRACTIONS = (0.5, 0.25, 0.75, 0.125, 0.875, 0.375, 0.625, 0.0625, 0.9375)
"""Where in a bin (on the logit scale) a split is tried, in turn, after refusals."""

MOST_REQUESTS = 64
"""The most histogram requests one search makes (after the first, one-bin histogram)."""

Ask = Callable[[list[float]], TrainSumResult]
Bin = tuple[float, float]


class ScoreBinSearch:
    """The search over ``ask`` (the sites' summed test phase for given edges), from the
    answered histogram ``total`` on ``edges``, up to ``most_bins`` bins."""

    def __init__(
        self,
        ask: Ask,
        edges: list[float],
        total: TrainSumResult,
        most_bins: int,
        most_requests: int = MOST_REQUESTS,
    ) -> None:
        self.ask = ask
        self.edges = list(edges)
        self.total = total
        self.most_bins = most_bins
        self.budget = most_requests
        self.refused: dict[Bin, int] = {}  # refused splits per bin still unsplit
        self.requests = 0

    def run(self) -> tuple[list[float], TrainSumResult]:
        """The finest edges found and their summed test phase."""
        while self.budget > 0:
            proposals = self._proposals()
            if not proposals:
                break
            self._attempt(proposals)
        logger.info("score bins: %d after %d requests", len(self.edges) - 1, self.requests)
        return self.edges, self.total

    def _proposals(self) -> list[tuple[Bin, float]]:
        """A split for each bin holding both classes, most tied pairs first."""
        room = self.most_bins - (len(self.edges) - 1)
        bins = zip(self.edges[:-1], self.edges[1:], strict=True)
        counts = zip(self.total.hist_pos, self.total.hist_neg, strict=True)
        ranked = sorted(
            ((pos * neg, b) for b, (pos, neg) in zip(bins, counts, strict=True) if pos and neg),
            key=lambda item: -item[0],
        )
        out: list[tuple[Bin, float]] = []
        for _, b in ranked:
            if len(out) >= room:
                break
            tried = self.refused.get(b, 0)
            while tried < len(FRACTIONS):
                point = split_on_grid(b[0], b[1], FRACTIONS[tried])
                if point is not None:
                    out.append((b, point))
                    break
                tried += 1
            self.refused[b] = tried
        return out

    def _try(self, group: list[tuple[Bin, float]]) -> bool:
        """Ask for the histogram with ``group``'s splits added; whether it was answered."""
        if self.budget <= 0:
            return False
        self.budget -= 1
        self.requests += 1
        edges = sorted({*self.edges, *(point for _, point in group)})
        try:
            self.total = self.ask(edges)
        except SitesFailed as exc:
            if {f.code for f in exc.failures.values()} != {ErrorCode.CELL_TOO_SMALL}:
                raise
            return False
        self.edges = edges
        for b, _ in group:
            self.refused.pop(b, None)
        return True

    def _attempt(self, group: list[tuple[Bin, float]]) -> None:
        if not self._try(group):
            self._settle(group)

    def _settle(self, group: list[tuple[Bin, float]]) -> None:
        """``group`` holds at least one refused split: find them by halving."""
        if len(group) == 1:
            b = group[0][0]
            self.refused[b] = self.refused.get(b, 0) + 1
            return
        half = len(group) // 2
        first, second = group[:half], group[half:]
        if self._try(first):
            self._settle(second)  # the refused split is in the second half
        elif self.budget > 0:
            self._settle(first)
            self._attempt(second)


__all__ = ["FRACTIONS", "MOST_REQUESTS", "ScoreBinSearch"]
