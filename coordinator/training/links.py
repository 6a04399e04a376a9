"""How a simulated ClientApp reaches its site: a :class:`SiteLink` runs one train step.

In simulation the ClientApps run in Flower's simulation workers (separate processes), so
a link must be picklable and synchronous. A federation provides its links with a
``training_links()`` method (the in-process federation of the tests and benchmarks
does). The HTTP federation provides none: its nodes are reached by the federation itself,
with model updates as secure sums (:mod:`coordinator.training.federated`), never by a
relay that would hand the coordinator each site's update.
"""

from __future__ import annotations

import logging
from typing import Protocol, runtime_checkable

from schemas.steps.train import TrainResult, TrainStep

logger = logging.getLogger(__name__)


@runtime_checkable
class SiteLink(Protocol):
    """One site, reachable for train steps."""

    @property
    def site(self) -> str: ...

    def run(self, step: TrainStep) -> TrainResult: ...


@runtime_checkable
class ProvidesLinks(Protocol):
    def training_links(self) -> list[SiteLink]: ...


def links_for(federation: object) -> list[SiteLink]:
    """The links of a federation's sites, in its site order (none when it has none)."""
    if isinstance(federation, ProvidesLinks):
        return federation.training_links()
    return []


__all__ = ["ProvidesLinks", "SiteLink", "links_for"]
