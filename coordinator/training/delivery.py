"""How a deployment ServerApp reaches the job's sites, fixed before the run starts.

The job's :class:`~coordinator.federation.http.HttpFederation` knows the sites, the
identity each was pinned with at ``add-node`` and the federation's settings; the
ServerApp runs in the SuperLink's process and rebuilds that federation over the grid
(:mod:`coordinator.training.carried`) from the plan's :class:`Delivery`
(:class:`coordinator.training.runtimes.deployment.Delivered` puts it into the plan). The
coordinator's signing key stays in its file (``DIR/coordinator.key``); the plan names the
file.
"""

from __future__ import annotations

import time
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from coordinator.federation.base import Federation
from coordinator.federation.http import HttpFederation
from schemas.errors import ErrorCode, FedpsyError


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
        raise FedpsyError(
            "runtime 'superlink' trains the coordinator's registered sites; "
            "this federation has none",
            code=ErrorCode.REQUEST_INVALID,
        )
    unpinned = [e.site for e in federation.endpoints if not e.fingerprint]
    if unpinned:
        raise FedpsyError(
            f"no identity is pinned for {', '.join(unpinned)}; add the node "
            "again with `fedpsy coordinator add-node`",
            code=ErrorCode.REQUEST_INVALID,
        )
    return Delivery(
        job_id=federation.job_id,
        key_file=str(key_file),
        identities={e.site: str(e.fingerprint) for e in federation.endpoints},
        secure=federation.secure,
        threshold=federation.threshold,
        request_timeout=federation.request_timeout,
        seconds=max(federation.deadline - time.monotonic(), 1.0),
    )


__all__ = ["Delivery", "delivery_for"]
