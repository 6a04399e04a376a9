"""Persons per site and per variable for the dashboard, without making a page wait long.

The counts are what each node released through its gate for the catalog (rounded to
tens, suppressed below the sites' minimum cell size; :func:`coordinator.catalog.site_counts`)
and are cached on the application for :data:`TTL_S` seconds, shared with
``GET /v1/catalog``. A page waits at most :data:`WAIT_S` seconds for a refresh (a site that
asks for manual approval would otherwise hold it up) and shows the counts it has.
"""

from __future__ import annotations

import asyncio
import logging
import time

import httpx
from fastapi import FastAPI, Request

from coordinator.catalog import Counts, site_counts
from coordinator.store import registry
from coordinator.web.rendering import coordinator

log = logging.getLogger(__name__)
TTL_S = 600.0
WAIT_S = 5.0


async def _refresh(app: FastAPI) -> Counts:
    coord = app.state.coordinator
    async with httpx.AsyncClient() as client:
        counts = await site_counts(coord.key, registry.list_nodes(coord.engine), client)
    app.state.catalog_counts = (time.monotonic(), counts)
    return counts


async def cached_counts(request: Request, wait_s: float = WAIT_S) -> Counts:
    """The cached counts, refreshed when stale; ``{}`` while none are known."""
    app = request.app
    coordinator(request)  # the dashboard only runs on a coordinator's application
    cached: tuple[float, Counts] | None = getattr(app.state, "catalog_counts", None)
    if cached is not None and time.monotonic() - cached[0] <= TTL_S:
        return cached[1]
    task: asyncio.Task[Counts] | None = getattr(app.state, "dashboard_counts_task", None)
    if task is None or task.done():
        task = asyncio.create_task(_refresh(app))
        app.state.dashboard_counts_task = task
    try:
        return await asyncio.wait_for(asyncio.shield(task), wait_s)
    except TimeoutError:
        log.info("catalog counts not ready; showing the page without them")
    except Exception:  # a failed refresh must not break the page
        log.exception("catalog counts failed")
    return cached[1] if cached is not None else {}
