"""Protocol round trips: the HTTP requests the coordinator sends to nodes per analysis.

Three synthetic sites, each a ``fedpsy node serve`` process on loopback, answer count,
summary, glm, kaplan_meier and kmeans through the coordinator's job runner and HTTP
federation with secure aggregation (the default). The federation counts every request it
sends (:attr:`~coordinator.federation.http.HttpFederation.trips`): tasks, polls of
pending tasks, and secure aggregation's key fetch, setup and unmask. A job opens one
secure-aggregation session, used by all its rounds: key and setup once per site, then a
task and an unmask per site per secure round.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

import httpx

from bench.consortium import ServedNodes, build_sites, trust
from bench.report import emit
from coordinator.federation.http import Endpoint, HttpFederation
from coordinator.jobs.runner import run_request
from coordinator.service import Coordinator
from coordinator.store import registry

SITES = 3
PERSONS = int(os.environ.get("FEDPSY_BENCH_TRIPS_PERSONS", "400"))
REQUESTS: dict[str, dict[str, Any]] = {
    "count": {"analysis": "count"},
    "summary": {"analysis": "summary", "variables": ["age", "education_years"]},
    "glm": {"analysis": "glm", "formula": "trs ~ age + sex + panss_total", "family": "binomial"},
    "kaplan_meier": {
        "analysis": "kaplan_meier",
        "time": "time_to_relapse",
        "event": "relapse",
        "grid": [90, 180, 365, 730],
    },
    "kmeans": {"analysis": "kmeans", "variables": ["age", "panss_total"], "k": 3, "seed": 3},
}
KINDS = ["key", "setup", "task", "poll", "unmask"]


async def _trips(coordinator: Coordinator, request: dict[str, Any]) -> Counter[str]:
    nodes = registry.list_nodes(coordinator.engine)
    hashes = {n.site: dict(n.variable_hashes) for n in nodes}
    federations: list[HttpFederation] = []
    async with httpx.AsyncClient() as client:

        def federation_for(sites: list[str]) -> HttpFederation:
            federation = HttpFederation(
                [Endpoint(n.site, n.url, n.fingerprint) for n in nodes if n.site in sites],
                coordinator.key,
                "round-trips",
                str(request["analysis"]),
                client,
            )
            federations.append(federation)
            return federation

        result = await run_request(request, hashes, federation_for, "round-trips")
    if result.status != "ok":
        raise RuntimeError(f"{request['analysis']} failed: {result.reason}")
    return sum((f.trips for f in federations), Counter())


def run() -> None:
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as name:
        root = Path(name)
        sites = build_sites(root, SITES, PERSONS, outcomes=True)
        coordinator = Coordinator.create(root / "coordinator")
        trust(sites, [coordinator.dir.public_key])
        try:
            with ServedNodes(sites) as served:
                for site in sites:
                    coordinator.add_node(site.name, served.urls[site.name])
                for analysis, request in REQUESTS.items():
                    trips = asyncio.run(_trips(coordinator, request))
                    total = sum(trips.values())
                    rows.append(
                        {
                            "analysis": analysis,
                            **{kind: trips.get(kind, 0) for kind in KINDS},
                            "round trips": total,
                            "per site": total / SITES,
                            "secure rounds": trips.get("unmask", 0) // SITES,
                        }
                    )
        finally:
            coordinator.close()
    emit(
        "round_trips",
        f"HTTP round trips per analysis, coordinator → {SITES} nodes, secure aggregation",
        ["analysis", *KINDS, "round trips", "per site", "secure rounds"],
        rows,
        [
            "one secure-aggregation session per job: key + setup once per site, "
            "then task + unmask per site per secure round",
            "poll = a pending task's answer fetched again (manual approval; none here)",
        ],
    )
