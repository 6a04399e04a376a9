"""A training run in deployment: the same federation as over HTTP, carried by the grid.

The ServerApp (:mod:`coordinator.training.server_app`) gets the plan and its
:class:`~coordinator.training.delivery.Delivery`; here it finds the job's sites among the
SuperNodes (:class:`~coordinator.training.grid_mailbox.GridMailbox`), rebuilds the job's
:class:`~coordinator.federation.http.HttpFederation` with every site reached through the
grid, and runs the rounds through it (:class:`~coordinator.training.federated.FederationRuntime`):
each phase a signed ``train_sum`` task masked for secure aggregation, each site's own
metrics a signed ``train`` task. The ServerApp thus learns the sums of the sites'
updates, never one site's update, exactly as the coordinator does over HTTP.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from pathlib import Path

import httpx
from flwr.serverapp import Grid

from coordinator.federation.http import Endpoint, HttpFederation
from coordinator.training.federated import FederationRuntime
from coordinator.training.grid_mailbox import GridMailbox
from coordinator.training.outcome import Outcome, Protection
from coordinator.training.plan import TrainPlan
from schemas.errors import ErrorCode, FedpsyError
from schemas.keys import load_private_key

logger = logging.getLogger(__name__)
DISCOVERY_S = 60.0


def carried_run(plan: TrainPlan, grid: Grid) -> Outcome:
    """Run ``plan`` over ``grid`` as its delivery says."""
    delivery = plan.delivery
    if delivery is None:
        raise FedpsyError(
            "the plan says not how to reach the sites", code=ErrorCode.TRAINING_FAILED
        )
    key = load_private_key(Path(delivery.key_file))
    mailbox = GridMailbox(grid, delivery.identities)
    mailbox.discover(timeout=min(DISCOVERY_S, delivery.seconds))
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="fedpsy-carrier", daemon=True)
    thread.start()
    client = httpx.AsyncClient()  # every site is carried by the grid: never used
    try:
        federation = HttpFederation(
            [Endpoint(s, "", delivery.identities[s], "pull") for s in plan.sites],
            key,
            delivery.job_id,
            "train",
            client,
            request_timeout=delivery.request_timeout,
            deadline=time.monotonic() + delivery.seconds,
            secure=delivery.secure,
            threshold=delivery.threshold,
            mailbox=mailbox,
        )
        outcome = FederationRuntime(federation, loop).run(plan, [])
        tally = federation.tally
        outcome.protection = Protection(secure=tally.secure, clear=tally.clear, dp=tally.dp)
        return outcome
    finally:
        asyncio.run_coroutine_threadsafe(client.aclose(), loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()


__all__ = ["carried_run"]
