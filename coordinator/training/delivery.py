"""How a deployment ServerApp reaches the job's sites, fixed before the run starts.

The job's :class:`~coordinator.federation.http.HttpFederation` knows the sites, the
identity each was pinned with at ``add-node`` and the federation's settings; the
ServerApp runs in the SuperLink's process and rebuilds that federation over the grid
(:mod:`coordinator.training.carried`) from the plan's :class:`Delivery`. The coordinator's
signing key stays in its file (``DIR/coordinator.key``); the plan names the file.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict

from coordinator.federation.base import Federation
from coordinator.federation.http import HttpFederation
from coordinator.training.links import SiteLink
from coordinator.training.outcome import Outcome
from schemas.errors import FedpsyError

if TYPE_CHECKING:  # the plan module imports Delivery from here
    from coordinator.training.plan import TrainPlan
    from coordinator.training.runtimes.deployment import DeploymentRuntime


class Delivery(BaseModel):
    """Requests signed with the coordinator's key (``key_file``), each site known by the
    identity fingerprint pinned at ``add-node``, and the federation's settings."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    job_id: str
    key_file: str
    identities: dict[str, str]
    secure: bool = True
    threshold: int | None = None
    request_timeout: float = 60.0
    seconds: float = 600.0


def delivery_for(federation: Federation, key_file: Path) -> Delivery:
    """The delivery of ``federation``'s sites (a job's HTTP federation)."""
    if not isinstance(federation, HttpFederation):
        raise FedpsyError("runtime 'superlink' trains the coordinator's registered sites; "
                          "this federation has none", code="request_invalid")  # fmt: skip
    unpinned = [e.site for e in federation.endpoints if not e.fingerprint]
    if unpinned:
        raise FedpsyError(f"no identity is pinned for {', '.join(unpinned)}; add the node "
                          "again with `fedpsy coordinator add-node`",
                          code="request_invalid")  # fmt: skip
    return Delivery(
        job_id=federation.job_id, key_file=str(key_file),
        identities={e.site: str(e.fingerprint) for e in federation.endpoints},
        secure=federation.secure, threshold=federation.threshold,
        request_timeout=federation.request_timeout,
        seconds=max(federation.deadline - time.monotonic(), 1.0),
    )  # fmt: skip


class Delivered:
    """A deployment runtime whose plans carry the delivery of ``federation``."""

    def __init__(self, runtime: DeploymentRuntime, federation: Federation,
                 key_file: Path) -> None:  # fmt: skip
        self.runtime = runtime
        self.federation = federation
        self.key_file = key_file
        delivery_for(federation, key_file)  # refuse before any step

    def run(self, plan: TrainPlan, links: list[SiteLink]) -> Outcome:
        delivery = delivery_for(self.federation, self.key_file)
        return self.runtime.run(plan.model_copy(update={"delivery": delivery}), links)


__all__ = ["Delivered", "Delivery", "delivery_for"]
