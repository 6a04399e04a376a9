"""The consortium at a glance: each site's reachability, last contact and dictionary.

Reachability is a live ``GET /health`` (public, no patient data) with a short timeout,
asked of all sites at once; a site that answers is recorded as seen. Dictionary
compatibility compares the variable hashes each node presented with the dictionary the
coordinator ships (the catalog's ``same`` / ``differs`` / ``site-only``), plus shipped
variables the site does not define.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
from sqlalchemy import Engine

from coordinator.federation.mailbox import STALE_S
from coordinator.store import registry
from coordinator.store.registry import NodeRecord

HEALTH_TIMEOUT_S = 2.0


@dataclass(frozen=True)
class SiteRow:
    site: str
    url: str
    reachable: bool
    detail: str
    last_seen: str
    dictionary_hash: str
    same: int
    differs: int
    site_only: int
    missing: int

    @property
    def compatible(self) -> bool:
        return self.differs == 0


def when(epoch: float | None, now: float | None = None) -> str:
    """``2025-01-31 12:00:00 UTC (5 min ago)``; ``never`` for None."""
    if epoch is None:
        return "never"
    ago = max(0.0, (now or time.time()) - epoch)
    unit = (
        f"{ago:.0f} s"
        if ago < 120
        else f"{ago / 60:.0f} min"
        if ago < 7200
        else f"{ago / 3600:.0f} h"
        if ago < 172800
        else f"{ago / 86400:.0f} days"
    )
    stamp = datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    return f"{stamp} ({unit} ago)"


async def _probe(client: httpx.AsyncClient, node: NodeRecord) -> tuple[bool, str]:
    if node.mode == "pull":  # it cannot be reached: it calls in
        fresh = node.last_seen is not None and time.time() - node.last_seen <= STALE_S
        return fresh, "polling" if fresh else "not polling"
    try:
        response = await client.get(node.url + "/health", timeout=HEALTH_TIMEOUT_S)
    except httpx.HTTPError as exc:
        return False, type(exc).__name__
    if response.status_code != 200:
        return False, f"HTTP {response.status_code}"
    return True, "ok"


async def site_rows(engine: Engine, catalog: dict[str, Any]) -> list[SiteRow]:
    """One row per registered node, probing all of them concurrently."""
    nodes: Sequence[NodeRecord] = registry.list_nodes(engine)
    async with httpx.AsyncClient() as client:
        probes = await asyncio.gather(*(_probe(client, n) for n in nodes))
    rows = []
    for node, (reachable, detail) in zip(nodes, probes, strict=True):
        if reachable:
            registry.touch_node(engine, node.site)
        counts = {"same": 0, "differs": 0, "site-only": 0, "missing": 0}
        for var in catalog["variables"]:
            status = var["sites"].get(node.site)
            if status is None:
                counts["missing"] += var["label"] is not None
            else:
                counts[status] += 1
        seen = time.time() if reachable else node.last_seen
        rows.append(
            SiteRow(
                node.site,
                node.url,
                reachable,
                detail,
                when(seen),
                node.dictionary_hash,
                counts["same"],
                counts["differs"],
                counts["site-only"],
                counts["missing"],
            )
        )
    return rows
