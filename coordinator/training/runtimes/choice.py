"""Which runtime a training run's rounds execute in: the federation itself, Flower's
simulation or the coordinator's SuperLink.

A runtime takes the plan and the links to the sites and returns the rounds'
:class:`~coordinator.training.outcome.Outcome`. The HTTP federation of the coordinator's
jobs carries the rounds itself, model updates as secure sums
(:class:`coordinator.training.federated.FederationRuntime`). A request with
``"runtime": "superlink"`` runs on the SuperLink this coordinator serves with, its plan
carrying the job's federation
(:class:`coordinator.training.runtimes.deployment.Delivered`), so the ServerApp sends the
same signed tasks and secure sums over Flower. A federation that provides
``training_links()`` (the in-process sites of the tests and benchmarks) runs in Flower's
simulation (:class:`coordinator.training.runtimes.simulation.SimulationRuntime`, a
relaying ClientApp per site).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Protocol

from coordinator.federation.base import Federation
from coordinator.layout import CoordinatorDir
from coordinator.training.federated import FederationRuntime
from coordinator.training.links import ProvidesLinks, SiteLink
from coordinator.training.outcome import Outcome
from coordinator.training.plan import TrainPlan
from coordinator.training.runtimes.deployment import Delivered, superlink_runtime
from coordinator.training.runtimes.simulation import SimulationRuntime
from schemas.errors import ErrorCode, FedpsyError

logger = logging.getLogger(__name__)


class Runtime(Protocol):
    def run(self, plan: TrainPlan, links: list[SiteLink]) -> Outcome: ...


def runtime_for(federation: Federation, wanted: str = "federation") -> Runtime:
    """The runtime of ``federation``'s training runs (call on the job's event loop);
    ``wanted = "superlink"``: the SuperLink this coordinator was started with."""
    if wanted == "superlink":
        runtime = superlink_runtime()
        if runtime is None:
            raise FedpsyError(
                "this coordinator runs no Flower SuperLink; start it with "
                "`fedpsy coordinator serve DIR --flower` (or --superlink "
                "ADDRESS), or leave runtime at 'federation'",
                code=ErrorCode.REQUEST_INVALID,
            )
        # the SuperLink's home is DIR/flwr of the coordinator that signs the requests
        return Delivered(runtime, federation, CoordinatorDir(runtime.home.parent).private_key)
    if isinstance(federation, ProvidesLinks):
        return SimulationRuntime()
    return FederationRuntime(federation, asyncio.get_running_loop())


__all__ = ["Runtime", "runtime_for"]
