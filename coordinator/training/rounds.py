"""The ServerApp's work: rounds of FedAvg or FedProx with early stopping, then scoring.

Each round sends the global weights to every site (``fit``), averages the returned
weights by Flower's strategy (weighted by each site's training rows), and asks every site
for its validation loss of the new weights (``validate``). The federated validation loss
(summed cross-entropy over all sites' validation rows / their number) decides early
stopping: training ends when it has not improved for ``patience`` rounds, and the weights
of the best round are kept (Prechelt, *Early Stopping — But When?*, 1998). Then every
site scores those weights on its test rows (``test``; the score bins are coarsened while
a site refuses a small cell) and trains a model on its own rows for the local-only
baseline (``local``).

A round is an error unless every site of the run answered: a missing reply, a Flower
error reply (a crashed ClientApp) or an empty round fails the run with
``training_failed``; a site's refusal fails it with the refusal's code.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterable

import numpy as np
from flwr.app import Message, MessageType, RecordDict
from flwr.serverapp import Grid
from flwr.serverapp.strategy import FedAvg, FedProx

from coordinator.analyses.histogram import coarsen
from coordinator.failures import SiteFailure, SitesFailed
from coordinator.training.outcome import Outcome, RoundStats
from coordinator.training.plan import TrainPlan
from schemas.errors import FedpsyError
from schemas.steps.train import Phase, TrainResult
from schemas.training.protocol import refusal_of, result_of, step_config, weights_record

logger = logging.getLogger(__name__)


def strategy_for(plan: TrainPlan) -> FedAvg:
    """Flower's strategy for the plan; every site takes part in every round."""
    n = len(plan.sites)
    common = {"fraction_train": 1.0, "fraction_evaluate": 1.0, "min_train_nodes": n,
              "min_evaluate_nodes": n, "min_available_nodes": n}  # fmt: skip
    if plan.strategy == "fedprox":
        return FedProx(proximal_mu=plan.proximal_mu, **common)  # type: ignore[arg-type]
    return FedAvg(**common)  # type: ignore[arg-type]


def _size(messages: Iterable[Message]) -> int:
    """Bytes of the arrays and configuration the messages carry."""
    total = 0
    for message in messages:
        if message.has_error():
            continue
        for record in message.content.array_records.values():
            total += sum(a.nbytes for a in record.to_numpy_ndarrays())
        for config in message.content.config_records.values():
            total += sum(len(str(v)) for v in config.values())
    return total


def check_replies(replies: list[Message], expected: int, what: str) -> list[TrainResult]:
    """The results of a complete round; raise for an empty, partial or failed one."""
    if expected == 0 or not replies:
        raise FedpsyError(f"{what}: no site answered (empty round)", code="training_failed")
    crashed = [m for m in replies if m.has_error()]
    if crashed:
        reasons = "; ".join(str(m.error.reason)[:200] for m in crashed)
        raise FedpsyError(f"{what}: {len(crashed)} site(s) failed: {reasons}",
                          code="training_failed")  # fmt: skip
    refusals = [r for r in (refusal_of(m.content) for m in replies) if r is not None]
    if refusals:
        raise SitesFailed({site: SiteFailure(code, detail) for site, code, detail in refusals})
    if len(replies) < expected:
        raise FedpsyError(f"{what}: {len(replies)} of {expected} sites answered",
                          code="training_failed")  # fmt: skip
    return [result_of(m.content) for m in replies]


class Rounds:
    """One run of the plan over a Flower grid."""

    def __init__(self, plan: TrainPlan, grid: Grid) -> None:
        self.plan = plan
        self.grid = grid
        self.strategy = strategy_for(plan)
        self.sent = 0
        self.received = 0

    def _exchange(self, messages: Iterable[Message],
                  what: str) -> tuple[list[Message], list[TrainResult]]:  # fmt: skip
        out = list(messages)
        self.sent += _size(out)
        replies = list(self.grid.send_and_receive(out, timeout=self.plan.round_timeout))
        self.received += _size(replies)
        return replies, check_replies(replies, len(out), what)

    def _ask(self, phase: Phase, weights: list[float], round: int,
             edges: list[float] | None = None) -> list[TrainResult]:  # fmt: skip
        step = self.plan.step(phase, weights, round, edges)
        nodes = list(self.grid.get_node_ids())
        messages = [
            Message(RecordDict({"arrays": weights_record(weights), "config": step_config(step)}),
                    dst_node_id=node, message_type=MessageType.EVALUATE)
            for node in nodes
        ]  # fmt: skip
        return self._exchange(messages, f"{phase} (round {round})")[1]

    def _train(self, round: int, weights: list[float]) -> tuple[list[float], float]:
        """One FedAvg/FedProx round: the averaged weights and the mean training loss."""
        config = step_config(self.plan.step("fit", weights, round))
        messages = self.strategy.configure_train(round, weights_record(weights), config,
                                                 self.grid)  # fmt: skip
        replies, results = self._exchange(messages, f"fit (round {round})")
        total = sum(r.n for r in results)
        arrays, _ = self.strategy.aggregate_train(round, replies)
        if arrays is None or total == 0:
            raise FedpsyError(f"fit (round {round}): nothing to average", code="training_failed")
        averaged = [float(v) for a in arrays.to_numpy_ndarrays() for v in np.ravel(a)]
        return averaged, sum(r.loss_sum for r in results) / total

    def run(self) -> Outcome:
        plan = self.plan
        weights, best = list(plan.initial), list(plan.initial)
        best_loss, best_round, stale = math.inf, 0, 0
        outcome = Outcome()
        for round in range(1, plan.rounds + 1):
            start, sent, received = time.perf_counter(), self.sent, self.received
            weights, train_loss = self._train(round, weights)
            validation = self._ask("validate", weights, round)
            n_val = sum(r.n for r in validation)
            val_loss = sum(r.loss_sum for r in validation) / n_val if n_val else None
            outcome.history.append(RoundStats(
                round=round, train_loss=train_loss, val_loss=val_loss,
                seconds=time.perf_counter() - start, bytes_sent=self.sent - sent,
                bytes_received=self.received - received))  # fmt: skip
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
        outcome.edges, tested = self._test(best)
        outcome.test = {r.site: r for r in tested}
        outcome.local = {r.site: r for r in self._ask("local", plan.initial, 0)}
        return outcome

    def _test(self, weights: list[float]) -> tuple[list[float], list[TrainResult]]:
        edges = self.plan.first_edges()
        while True:
            try:
                return edges, self._ask("test", weights, 0, edges)
            except SitesFailed as exc:
                codes = {f.code for f in exc.failures.values()}
                if codes != {"cell_too_small"} or not edges:
                    raise
                # one bin still too small: score without histograms (no pooled AUC)
                edges = coarsen(edges) if len(edges) > 2 else []
                logger.info("a site refused a small score cell; %d bins now", len(edges) - 1)


__all__ = ["Rounds", "check_replies", "strategy_for"]
