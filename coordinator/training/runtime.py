"""Where a training run's rounds execute: in simulation (default) or on a deployment.

A runtime takes the plan and the links to the sites and returns the rounds'
:class:`~coordinator.training.outcome.Outcome`. :class:`SimulationRuntime` runs Flower's
simulation in a temporary ``FLWR_HOME`` with a relaying ClientApp per site; a federation
that provides ``training_runtime()`` chooses another (e.g. a
:class:`coordinator.training.deploy.DeploymentRuntime` on a running SuperLink).
"""

from __future__ import annotations

import logging
from typing import Protocol, runtime_checkable

from coordinator.training.links import SiteLink
from coordinator.training.outcome import Outcome
from coordinator.training.plan import TrainPlan
from coordinator.training.simulation import simulate

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


def runtime_for(federation: object) -> Runtime:
    if isinstance(federation, ProvidesRuntime):
        return federation.training_runtime()
    return SimulationRuntime()


__all__ = ["ProvidesRuntime", "Runtime", "SimulationRuntime", "runtime_for"]
