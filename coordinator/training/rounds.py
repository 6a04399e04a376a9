"""The ServerApp's work: the rounds of :mod:`coordinator.training.loop` over a Flower grid.

Each phase is one Flower message per site carrying the train step; ``fit`` replies are
averaged by Flower's strategy (FedAvg or FedProx, weighted by each site's training rows),
the other phases' sums are added here. Over Flower the ServerApp holds each site's reply
(no secure aggregation on this path: see :mod:`coordinator.training.federated` for the
path where the coordinator only learns sums).

A round is an error unless every site of the run answered: a missing reply, a Flower
error reply (a crashed ClientApp) or an empty round fails the run with
``training_failed``; a site's refusal fails it with the refusal's code.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable

import numpy as np
from flwr.app import Message, MessageType, RecordDict
from flwr.serverapp import Grid
from flwr.serverapp.strategy import FedAvg, FedProx

from coordinator.federation.failures import SiteFailure, SitesFailed
from coordinator.training.grid_mailbox import pull_replies
from coordinator.training.loop import RoundLoop
from coordinator.training.plan import TrainPlan
from schemas.errors import ErrorCode, FedpsyError
from schemas.steps.additive import add_results
from schemas.steps.train import Phase, TrainResult, TrainSumResult
from schemas.training.protocol import refusal_of, result_of, step_config, weights_record

logger = logging.getLogger(__name__)


def strategy_for(plan: TrainPlan) -> FedAvg:
    """Flower's strategy for the plan; every site takes part in every round."""
    n = len(plan.sites)
    common = {
        "fraction_train": 1.0,
        "fraction_evaluate": 1.0,
        "min_train_nodes": n,
        "min_evaluate_nodes": n,
        "min_available_nodes": n,
    }
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
        raise FedpsyError(f"{what}: no site answered (empty round)", code=ErrorCode.TRAINING_FAILED)
    crashed = [m for m in replies if m.has_error()]
    if crashed:
        reasons = "; ".join(str(m.error.reason)[:200] for m in crashed)
        raise FedpsyError(
            f"{what}: {len(crashed)} site(s) failed: {reasons}", code=ErrorCode.TRAINING_FAILED
        )
    refusals = [r for r in (refusal_of(m.content) for m in replies) if r is not None]
    if refusals:
        raise SitesFailed({site: SiteFailure(code, detail) for site, code, detail in refusals})
    if len(replies) < expected:
        raise FedpsyError(
            f"{what}: {len(replies)} of {expected} sites answered", code=ErrorCode.TRAINING_FAILED
        )
    return [result_of(m.content) for m in replies]


def send_and_receive(grid: Grid, messages: list[Message], timeout: float) -> list[Message]:
    """Push ``messages`` and pull their replies until all came or ``timeout`` passed
    (:func:`~coordinator.training.grid_mailbox.pull_replies`). A grid that is no Flower
    grid (tests) is asked with its own ``send_and_receive``."""
    if not isinstance(grid, Grid):
        return list(grid.send_and_receive(messages, timeout=timeout))
    waiting = set(grid.push_messages(messages))
    return pull_replies(grid.pull_messages, waiting, time.monotonic() + timeout)


def total_of(results: list[TrainResult]) -> TrainSumResult:
    """The sum of the sites' results (held in the clear here)."""
    return add_results([TrainSumResult.of(r) for r in results])


class GridExchange:
    """The phases of one run as Flower messages over ``grid``."""

    def __init__(self, plan: TrainPlan, grid: Grid) -> None:
        self.plan = plan
        self.grid = grid
        self.strategy = strategy_for(plan)
        self.sent = 0
        self.received = 0

    def _exchange(
        self, messages: Iterable[Message], what: str
    ) -> tuple[list[Message], list[TrainResult]]:
        out = list(messages)
        self.sent += _size(out)
        replies = send_and_receive(self.grid, out, self.plan.round_timeout)
        self.received += _size(replies)
        return replies, check_replies(replies, len(out), what)

    def _ask(
        self, phase: Phase, weights: list[float], round: int, edges: list[float] | None = None
    ) -> list[TrainResult]:
        step = self.plan.step(phase, weights, round, edges)
        nodes = list(self.grid.get_node_ids())
        messages = [
            Message(
                RecordDict({"arrays": weights_record(weights), "config": step_config(step)}),
                dst_node_id=node,
                message_type=MessageType.EVALUATE,
            )
            for node in nodes
        ]
        return self._exchange(messages, f"{phase} (round {round})")[1]

    def fit(self, round: int, weights: list[float]) -> tuple[list[float], float]:
        """One FedAvg/FedProx round: the averaged weights and the mean training loss."""
        config = step_config(self.plan.step("fit", weights, round))
        messages = self.strategy.configure_train(round, weights_record(weights), config, self.grid)
        replies, results = self._exchange(messages, f"fit (round {round})")
        total = sum(r.n for r in results)
        arrays, _ = self.strategy.aggregate_train(round, replies)
        if arrays is None or total == 0:
            raise FedpsyError(
                f"fit (round {round}): nothing to average", code=ErrorCode.TRAINING_FAILED
            )
        averaged = [float(v) for a in arrays.to_numpy_ndarrays() for v in np.ravel(a)]
        return averaged, sum(r.loss_sum for r in results) / total

    def validate(self, round: int, weights: list[float]) -> TrainSumResult:
        return total_of(self._ask("validate", weights, round))

    def test(
        self, weights: list[float], edges: list[float], per_site: bool
    ) -> tuple[TrainSumResult, dict[str, TrainResult]]:
        results = self._ask("test", weights, 0, edges)
        return total_of(results), ({r.site: r for r in results} if per_site else {})

    def local(self) -> dict[str, TrainResult]:
        return {r.site: r for r in self._ask("local", self.plan.initial, 0)}


class Rounds(RoundLoop):
    """One run of the plan over a Flower grid."""

    def __init__(self, plan: TrainPlan, grid: Grid) -> None:
        super().__init__(plan, GridExchange(plan, grid))


__all__ = [
    "GridExchange",
    "Rounds",
    "check_replies",
    "send_and_receive",
    "strategy_for",
    "total_of",
]
