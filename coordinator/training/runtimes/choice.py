"""Where a training run's rounds execute: through the federation, in Flower's simulation
or on a Flower deployment.

A runtime takes the plan and the links to the sites and returns the rounds'
:class:`~coordinator.training.outcome.Outcome`. A federation that provides
``training_runtime()`` chooses its own (e.g. a
:class:`coordinator.training.runtimes.deployment.DeploymentRuntime` on a running
SuperLink); one that provides ``training_links()`` (in-process sites) runs in Flower's
simulation (:class:`SimulationRuntime`, a relaying ClientApp per site); any other
federation — the HTTP federation of the coordinator's jobs — carries the rounds itself,
model updates as secure sums (:class:`coordinator.training.federated.FederationRuntime`).
A request with ``"runtime": "superlink"`` runs on the SuperLink this coordinator serves
with, its plan carrying the job's federation
(:class:`coordinator.training.delivery.Delivered`), so the ServerApp sends the same signed
tasks and secure sums over Flower.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Protocol, runtime_checkable

from coordinator.federation.base import Federation
from coordinator.layout import CoordinatorDir
from coordinator.training.delivery import Delivered
from coordinator.training.federated import FederationRuntime
from coordinator.training.links import ProvidesLinks, SiteLink
from coordinator.training.outcome import Outcome
from coordinator.training.plan import TrainPlan
from coordinator.training.runtimes.deployment import superlink_runtime
from coordinator.training.runtimes.simulation import simulate
from schemas.errors import FedpsyError

logger = logging.getLogger(__name__)


class Runtime(Protocol):
    def run(self, plan: TrainPlan, links: list[SiteLink]) -> Outcome: ...


@runtime_checkable
class ProvidesRuntime(Protocol):
    def training_runtime(self) -> Runtime: ...


class SimulationRuntime:
    """Flower's simulation runtime (in a child process), one SuperNode per site."""

    def __init__(self, workers: int = 2) -> None:
        self.workers = workers

    def run(self, plan: TrainPlan, links: list[SiteLink]) -> Outcome:
        return simulate(plan, links, self.workers)


def runtime_for(federation: Federation, wanted: str = "federation") -> Runtime:
    """The runtime of ``federation``'s training runs (call on the job's event loop);
    ``wanted = "superlink"``: the SuperLink this coordinator was started with."""
    if isinstance(federation, ProvidesRuntime):
        return federation.training_runtime()
    if wanted == "superlink":
        runtime = superlink_runtime()
        if runtime is None:
            raise FedpsyError("this coordinator runs no Flower SuperLink; start it with "
                              "`fedpsy coordinator serve DIR --flower` (or --superlink "
                              "ADDRESS), or leave runtime at 'federation'",
                              code="request_invalid")  # fmt: skip
        # the SuperLink's home is DIR/flwr of the coordinator that signs the requests
        return Delivered(runtime, federation, CoordinatorDir(runtime.home.parent).private_key)
    if isinstance(federation, ProvidesLinks):
        return SimulationRuntime()
    return FederationRuntime(federation, asyncio.get_running_loop())


__all__ = ["ProvidesRuntime", "Runtime", "SimulationRuntime", "runtime_for"]
