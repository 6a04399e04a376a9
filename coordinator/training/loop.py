"""The rounds of a training run, whatever carries them: FedAvg/FedProx with early stopping,
then scoring.

Each round asks every site to train from the global weights (``fit``) and takes the
average of their updates weighted by their training rows (FedAvg, McMahan et al., AISTATS
2017; FedProx differs only in the sites' local objective, Li et al., MLSys 2020), then
asks for the summed validation loss of the new weights (``validate``). The federated
validation loss (summed cross-entropy over all sites' validation rows / their number)
decides early stopping: training ends when it has not improved for ``patience`` rounds,
and the weights of the best round are kept (Prechelt, *Early Stopping — But When?*, 1998).
Then the sites score those weights on their test rows (``test``: first in one bin, then
in bins made finer while every site's cell rule allows,
:class:`coordinator.stats.score_bins.ScoreBinSearch`) and, when the plan asks for per-site
metrics, each site trains a model on its own rows for the local-only baseline (``local``).

An :class:`Exchange` carries the phases: over a Flower grid
(:class:`coordinator.training.rounds.GridExchange`) or through the federation's secure
sums (:class:`coordinator.training.federated.FederationExchange`).
"""

from __future__ import annotations

import logging
import math
import time
from typing import Protocol

from coordinator.federation.failures import SitesFailed
from coordinator.stats.score_bins import ScoreBinSearch
from coordinator.training.outcome import Outcome, RoundStats
from coordinator.training.plan import TrainPlan
from schemas.errors import ErrorCode, FedpsyError
from schemas.steps.train import TrainResult, TrainSumResult

logger = logging.getLogger(__name__)


class Exchange(Protocol):
    """How one run's phases reach the sites; ``sent``/``received`` count bytes so far."""

    sent: int
    received: int

    def fit(self, round: int, weights: list[float]) -> tuple[list[float], float]:
        """The sites' updates averaged by training rows, and the mean training loss."""
        ...

    def validate(self, round: int, weights: list[float]) -> TrainSumResult:
        """The sites' validation sums for ``weights``."""
        ...

    def test(
        self, weights: list[float], edges: list[float], per_site: bool
    ) -> tuple[TrainSumResult, dict[str, TrainResult]]:
        """The sites' test sums (with class histograms on ``edges``) and, with
        ``per_site``, each site's own test metrics."""
        ...

    def local(self) -> dict[str, TrainResult]:
        """Each site's local-only model scored on its test rows."""
        ...


def mean_loss(total: TrainSumResult) -> float | None:
    return total.loss_sum / total.n if total.n else None


def averaged(total: TrainSumResult, round: int) -> tuple[list[float], float]:
    """FedAvg from a fit phase's sums (an error when no row was fitted)."""
    if total.n == 0 or not total.weighted:
        raise FedpsyError(
            f"fit (round {round}): nothing to average", code=ErrorCode.TRAINING_FAILED
        )
    return total.average(), total.loss_sum / total.n


class RoundLoop:
    """One run of ``plan`` over ``exchange``."""

    def __init__(self, plan: TrainPlan, exchange: Exchange) -> None:
        self.plan = plan
        self.exchange = exchange

    def run(self) -> Outcome:
        plan, ex = self.plan, self.exchange
        weights, best = list(plan.initial), list(plan.initial)
        best_loss, best_round, stale = math.inf, 0, 0
        outcome = Outcome()
        for round in range(1, plan.rounds + 1):
            start, sent, received = time.perf_counter(), ex.sent, ex.received
            weights, train_loss = ex.fit(round, weights)
            val_loss = mean_loss(ex.validate(round, weights))
            outcome.history.append(
                RoundStats(
                    round=round,
                    train_loss=train_loss,
                    val_loss=val_loss,
                    seconds=time.perf_counter() - start,
                    bytes_sent=ex.sent - sent,
                    bytes_received=ex.received - received,
                )
            )
            watched = val_loss if val_loss is not None else train_loss
            if watched < best_loss - 1e-9:
                best, best_loss, best_round, stale = list(weights), watched, round, 0
            else:
                stale += 1
            logger.info("round %d: train %.4f, validation %s", round, train_loss, val_loss)
            if stale >= plan.patience:
                outcome.stopped_early = round < plan.rounds
                break
        outcome.weights, outcome.best_round = best, best_round
        outcome.edges, outcome.pooled, outcome.test = self._test(best)
        outcome.local = ex.local() if plan.per_site else {}
        return outcome

    def _test(
        self, weights: list[float]
    ) -> tuple[list[float], TrainSumResult, dict[str, TrainResult]]:
        """The summed test phase on the finest score bins the sites allow (none when even
        one bin is refused: one bin's counts are the test part's, which a site's
        ``min_cell`` may exceed), and each site's own test metrics."""
        ex, edges = self.exchange, [0.0, 1.0]
        try:
            total, each = ex.test(weights, edges, self.plan.per_site)
        except SitesFailed as exc:
            if {f.code for f in exc.failures.values()} != {ErrorCode.CELL_TOO_SMALL}:
                raise
            logger.info("a site refused the one-bin score histogram: no pooled AUC")
            total, each = ex.test(weights, [], self.plan.per_site)
            return [], total, each
        if self.plan.bins > 1:
            search = ScoreBinSearch(
                lambda e: ex.test(weights, e, False)[0], edges, total, self.plan.bins
            )
            edges, total = search.run()
        return edges, total, each


__all__ = ["Exchange", "RoundLoop", "averaged", "mean_loss"]
