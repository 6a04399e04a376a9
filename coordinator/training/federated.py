"""Training rounds carried by the federation itself: model updates only as secure sums.

Over HTTP the coordinator drives the rounds of :mod:`coordinator.training.loop` through
its :class:`~coordinator.federation.base.Federation`: every ``fit``, ``validate`` and ``test``
phase is one ``train_sum`` step summed over sites, which the HTTP federation does with
secure aggregation (:mod:`coordinator.federation.secagg`; Bonawitz et al., CCS 2017). Each site
answers ``n_k · w_k``, ``n_k`` and its loss and score sums masked, so the coordinator
learns ``Σ n_k w_k`` and ``Σ n_k`` and nothing of one site's update; FedAvg is their
quotient (McMahan et al., AISTATS 2017). Each node applies its whole gate to every
phase (signature, approved app, policy, differencing guard, disclosure rules, audit).

Only what the request asks per site leaves in the clear: each site's own test metrics
and its local-only baseline (``per_site``), as ``train`` steps gathered per site, never
weights. The rounds run in a worker thread (they are synchronous, as in a Flower
ServerApp) and hand each federation call to the event loop the job runs on.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from coordinator.federation.base import Federation
from coordinator.training.links import SiteLink
from coordinator.training.loop import RoundLoop, averaged
from coordinator.training.outcome import Outcome
from coordinator.training.plan import TrainPlan
from schemas.steps.base import StepBase
from schemas.steps.train import Phase, TrainResult, TrainStep, TrainSumResult, TrainSumStep

logger = logging.getLogger(__name__)
T = TypeVar("T")
Receiver = Callable[[str, str, dict[str, Any]], None]


def _bytes(payload: object) -> int:
    return len(json.dumps(payload, separators=(",", ":")))


class FederationExchange:
    """The phases of one run as steps of ``federation`` (running on ``loop``)."""

    def __init__(
        self, plan: TrainPlan, federation: Federation, loop: asyncio.AbstractEventLoop
    ) -> None:
        self.plan = plan
        self.federation = federation
        self.loop = loop
        self.sent = 0
        self.received = 0

    def _call(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result()

    def _counted(self, step: StepBase) -> StepBase:
        self.sent += _bytes(step.model_dump(mode="json")) * len(self.federation.sites)
        return step

    def received_from(self, site: str, kind: str, payload: dict[str, Any]) -> None:
        """Count what a site sent back (the HTTP federation's ``on_receive``)."""
        del site, kind
        self.received += _bytes(payload)

    def _sum(
        self, phase: Phase, weights: list[float], round: int, edges: list[float] | None = None
    ) -> TrainSumResult:
        work = self.plan.step(phase, weights, round, edges)
        step = TrainSumStep.model_validate({**work.model_dump(), "step": "train_sum"})
        return self._call(self.federation.sum(self._counted(step), TrainSumResult))

    def _each(
        self, phase: Phase, weights: list[float], edges: list[float] | None = None
    ) -> dict[str, TrainResult]:
        step: TrainStep = self.plan.step(phase, weights, 0, edges)
        return self._call(self.federation.gather(self._counted(step), TrainResult))

    def fit(self, round: int, weights: list[float]) -> tuple[list[float], float]:
        return averaged(self._sum("fit", weights, round), round)

    def validate(self, round: int, weights: list[float]) -> TrainSumResult:
        return self._sum("validate", weights, round)

    def test(
        self, weights: list[float], edges: list[float], per_site: bool
    ) -> tuple[TrainSumResult, dict[str, TrainResult]]:
        total = self._sum("test", weights, 0, edges)
        # each site's own metrics need no histograms: no score cells leave per site
        return total, (self._each("test", weights) if per_site else {})

    def local(self) -> dict[str, TrainResult]:
        return self._each("local", self.plan.initial)


class FederationRuntime:
    """Runs a plan's rounds through ``federation`` (whose calls run on ``loop``)."""

    def __init__(self, federation: Federation, loop: asyncio.AbstractEventLoop) -> None:
        self.federation = federation
        self.loop = loop

    def run(self, plan: TrainPlan, links: list[SiteLink]) -> Outcome:
        del links  # the federation reaches the sites itself
        exchange = FederationExchange(plan, self.federation, self.loop)
        previous: Receiver | None = getattr(self.federation, "on_receive", None)
        counting = hasattr(self.federation, "on_receive")
        if counting:

            def received(site: str, kind: str, payload: dict[str, Any]) -> None:
                exchange.received_from(site, kind, payload)
                if previous is not None:
                    previous(site, kind, payload)

            setattr(self.federation, "on_receive", received)  # noqa: B010
        try:
            return RoundLoop(plan, exchange).run()
        finally:
            if counting:
                setattr(self.federation, "on_receive", previous)  # noqa: B010


__all__ = ["FederationExchange", "FederationRuntime"]
